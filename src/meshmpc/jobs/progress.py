"""Progress of a job: bars on stderr (tqdm), or a state file a parent process shows.

Components call ``step.progress(done, total, what)``; the runner routes it to
a sink. One node (``--party P``) draws a bar per step on its own stderr.
Local runs start every party as a child process whose stderr goes to a log,
so each child writes its state to ``<work>/<party>.progress.json`` (at most
a few times a second, atomically) and the parent draws one bar per party
(:class:`ProgressMonitor`). ``--quiet`` turns all of it off.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

MIN_INTERVAL_S = 0.2


def _size() -> dict[str, int]:
    """The terminal's size for tqdm, with a fallback when it reports none (a bare pty
    reports 0 x 0, and tqdm would then hide every bar)."""
    size = shutil.get_terminal_size((100, 24))
    return {"ncols": size.columns or 100, "nrows": size.lines or 24}


class ProgressSink:
    """Receives the runner's progress events; the base class ignores them."""

    def start_step(self, step_id: str, index: int, count: int) -> None:
        """Step ``index`` (1-based) of ``count`` starts."""

    def update(self, step_id: str, done: int, total: int, what: str) -> None:
        """A component reported ``done`` of ``total`` units of ``what``."""

    def end_step(self, step_id: str, status: str) -> None:
        """The step ended (``ran``, ``resumed``, ``not-a-party``, ``failed``)."""

    def close(self) -> None:
        """No more events."""


class TqdmProgress(ProgressSink):
    """A tqdm bar per step on stderr (one node's own terminal)."""

    def __init__(self, party: str) -> None:
        self.party = party
        self._bar: Any = None
        self._label = ""

    def start_step(self, step_id: str, index: int, count: int) -> None:
        self._close_bar()
        self._label = f"{self.party} [{index}/{count}] {step_id}"
        self._bar = tqdm(total=None, desc=self._label, file=sys.stderr, leave=True,
                         mininterval=MIN_INTERVAL_S, **_size())

    def update(self, step_id: str, done: int, total: int, what: str) -> None:
        if self._bar is None:
            return
        if self._bar.total != total:
            self._bar.reset(total=total)
        self._bar.set_postfix_str(what, refresh=False)
        self._bar.n = done
        self._bar.refresh()

    def end_step(self, step_id: str, status: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(status)
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._close_bar()


class FileProgress(ProgressSink):
    """Writes this party's state to a small JSON file for a parent process to show."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.state: dict[str, Any] = {"step": "", "index": 0, "count": 0, "done": 0,
                                      "total": 0, "what": "", "status": "starting"}
        self._last = 0.0

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < MIN_INTERVAL_S:
            return
        self._last = now
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path)

    def start_step(self, step_id: str, index: int, count: int) -> None:
        self.state.update(step=step_id, index=index, count=count, done=0, total=0, what="",
                          status="running")
        self._write(force=True)

    def update(self, step_id: str, done: int, total: int, what: str) -> None:
        self.state.update(done=done, total=total, what=what)
        self._write()

    def end_step(self, step_id: str, status: str) -> None:
        self.state.update(status=status)
        self._write(force=True)

    def close(self) -> None:
        self.state.update(status="finished")
        self._write(force=True)


class ProgressMonitor:
    """Parent side of :class:`FileProgress`: one bar per party, updated from a thread."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        width = max(len(p) for p in files) if files else 0
        self._bars = {p: tqdm(total=1, desc=p.ljust(width), file=sys.stderr, leave=True,
                              position=i, **_size(),
                              bar_format="{desc} {bar:20} {postfix}")
                      for i, p in enumerate(files)}

    def __enter__(self) -> ProgressMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()
        for bar in self._bars.values():
            bar.close()

    def _loop(self) -> None:
        while not self._stop.wait(MIN_INTERVAL_S):
            self._poll()

    def _poll(self) -> None:
        for party, path in self.files.items():
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            bar = self._bars[party]
            count = max(int(state.get("count", 0)), 1)
            fraction = state["done"] / state["total"] if state.get("total") else 0.0
            finished = state.get("status") == "finished"
            bar.total = count
            bar.n = count if finished else min(state.get("index", 1) - 1 + fraction, count)
            step = f"[{state.get('index')}/{state.get('count')}] {state.get('step')}"
            bar.set_postfix_str("done" if finished else f"{step} {state.get('what', '')}"
                                .strip(), refresh=False)
            bar.refresh()
