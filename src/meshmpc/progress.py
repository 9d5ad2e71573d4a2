"""Progress on stderr for long steps: step lines, and phases with rate and ETA.

Two kinds of display:

* :class:`Progress` (PSI, PIR): one line per step of a run, and inside a
  long phase (an OT extension, an OPRF evaluation, hashing, writing) lines
  with items done of total, the rate and the time left. The C kernels run in
  batches, so a phase is ticked between batches (never per item) and prints
  at most one line per ``interval_s`` (the first one early, after a tenth
  of it, so a long phase shows an estimate soon), and its final line with
  the rate. Ticks may
  come from worker threads. At a terminal the phase line is redrawn in
  place; in a log (systemd, a file) every printed tick is its own line.
* :class:`RowProgress` (data tools): a tqdm bar counting rows, shown only at
  a terminal.

Commands turn both off with ``--quiet``.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Self, TextIO

from tqdm import tqdm

DEFAULT_INTERVAL_S = 1.0
FIRST_TICK_SHARE = 0.1
"""A phase's first line comes after this share of the interval (a quick phase shows
only its final line, a long one an early estimate)."""


def progress_text(done: int, total: int | None, elapsed: float) -> str:
    """``done/total pct, rate/s, ETA`` for a stage that has run ``elapsed`` seconds."""
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"{done:,}" + (f"/{total:,} {100 * done / total:5.1f}%" if total else "")
    text += f", {rate:,.0f}/s"
    if total and rate > 0 and done < total:
        text += f", ETA {(total - done) / rate:,.0f} s"
    return text


class Phase:
    """One long phase: items done of ``total``, ticked between batches.

    Use as a context manager (the final line is printed on a normal exit) or
    call :meth:`finish`. Thread-safe: worker threads may call :meth:`advance`.
    """

    def __init__(self, owner: Progress, name: str, total: int | None, unit: str) -> None:
        self.owner, self.name, self.total, self.unit = owner, name, total, unit
        self.done = 0
        self.started = time.monotonic()
        self._printed: float | None = None
        self._finished = False

    def advance(self, items: int) -> None:
        """``items`` more are done (one batch)."""
        self.update_to(None, items)

    def update_to(self, done: int | None, items: int = 0) -> None:
        """Set the count to ``done`` (or add ``items``); print if a line is due."""
        owner = self.owner
        if not owner.enabled:
            return
        with owner.lock:
            self.done = self.done + items if done is None else done
            now = time.monotonic()
            last = self._printed if self._printed is not None else (
                self.started - owner.interval_s * (1 - FIRST_TICK_SHARE))
            if now - last < owner.interval_s:
                return
            if self.total is not None and self.done >= self.total:
                return  # the final line says it
            self._printed = now
            counts = progress_text(self.done, self.total, now - self.started)
            owner.write_tick(f"{self.name} {counts}")

    def finish(self) -> None:
        """Print the phase's final line: items, time and rate."""
        owner = self.owner
        if not owner.enabled or self._finished:
            return
        with owner.lock:
            self._finished = True
            seconds = time.monotonic() - self.started
            count = self.done or self.total or 0  # one-call phases never tick
            rate = f", {count / seconds:,.0f}/s" if seconds > 0 and count else ""
            owner.write_line(f"{self.name}: {count:,}{self._unit_suffix()} in "
                             f"{seconds:.2f} s{rate}")

    def _unit_suffix(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.finish()


class Progress:
    """Step lines and phase ticks for one command, prefixed with ``label``.

    Disabled (``enabled=False``), every method returns at once, so protocol
    code ticks unconditionally. ``Progress.off()`` is such an instance.
    """

    def __init__(self, label: str, enabled: bool, interval_s: float = DEFAULT_INTERVAL_S,
                 stream: TextIO | None = None) -> None:
        self.label = label
        self.enabled = enabled
        self.interval_s = interval_s
        self.start = time.monotonic()
        self.lock = threading.RLock()
        self._stream = stream
        self._open_line = False
        self._phases: dict[str, Phase] = {}

    @classmethod
    def off(cls) -> Self:
        """A reporter that prints nothing."""
        return cls("", False)

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def stage(self, text: str) -> None:
        """One line announcing a step of the run."""
        if self.enabled:
            with self.lock:
                self.write_line(text)

    def phase(self, name: str, total: int | None, unit: str = "") -> Phase:
        """A phase of ``total`` items (None: unknown) that ticks between batches."""
        return Phase(self, name, total, unit)

    def update(self, name: str, done: int, total: int | None = None) -> None:
        """Set the count of the phase ``name`` (started on first use) to ``done``."""
        if not self.enabled:
            return
        phase = self._phases.get(name)
        if phase is None:
            phase = self._phases[name] = Phase(self, name, total, "")
        phase.total = total
        if total is not None and done >= total:
            phase.done = done
            phase.finish()
            del self._phases[name]
            return
        phase.update_to(done)

    def done(self) -> None:
        """End a line left open at a terminal."""
        if self.enabled and self._open_line:
            with self.lock:
                self.stream.write("\n")
                self._open_line = False

    def write_line(self, text: str) -> None:
        """A finished line (the caller holds the lock)."""
        prefix = "\r\x1b[K" if self._open_line else ""
        self.stream.write(f"{prefix}{self.label}: {text} [{self._elapsed():6.1f} s]\n")
        self.stream.flush()
        self._open_line = False

    def write_tick(self, text: str) -> None:
        """An intermediate phase line: redrawn in place at a terminal, else its own line."""
        line = f"{self.label}: {text} [{self._elapsed():6.1f} s]"
        if _is_terminal(self.stream):
            self.stream.write(f"\r\x1b[K{line}")
            self._open_line = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _elapsed(self) -> float:
        return time.monotonic() - self.start


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class RowProgress:
    """A bar counting rows against an estimated total (rate and ETA from tqdm)."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self._bar = tqdm(total=total or None, desc=label, unit=" rows", unit_scale=True,
                         file=sys.stderr, disable=not enabled, leave=False,
                         dynamic_ncols=True, mininterval=0.5)

    def update(self, rows: int) -> None:
        self._bar.update(rows)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def wanted(quiet: bool = False) -> bool:
    """Show progress: stderr is a terminal and the user did not ask for quiet."""
    return not quiet and sys.stderr.isatty()
