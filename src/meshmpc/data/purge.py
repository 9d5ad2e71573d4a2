"""Retention for plain job output folders: what ``meshmpc data purge`` deletes (or lists).

A job run outside a node (``meshmpc job run``, the demo) leaves
``<out>/<job>/<party>/`` with its manifest. The manifest records the job's
``purpose`` (the job file's ``purpose:`` key) and when each step ran; the
party's folder expires ``purposes[purpose]`` days after its last step (the
purposes and their days are the node's list, :data:`meshmpc.platform.consent.
DEFAULT_PURPOSES` for plain runs). A folder without a purpose is kept unless
``default_purpose`` is given; one whose purpose is not in the list is kept and
named, so nothing goes by mistake. Every deletion is appended to
``<out>/purge-log.jsonl`` (job, party, bytes, reason, time): plain runs have
no audit log, and the record of what went must outlive what went.

Scratch a dead run left behind (:func:`purge_scratch`: step folders of runs no
longer running, bucket folders, half-written files of dead processes; all of
it sealed, see :mod:`meshmpc.data.scratchdir`) goes at every purge, whatever
the purpose: it never outlives its run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from meshmpc.data import scratchdir

MANIFEST = "manifest.json"
PURGE_LOG = "purge-log.jsonl"
DAY_S = 86400.0


@dataclass(frozen=True)
class OutputFolder:
    """One party's output of one job, with what decides its retention."""

    job: str
    party: str
    path: Path
    purpose: str | None
    finished: float
    """When its last step ended (manifest times; the manifest's mtime when it has none)."""
    bytes: int


@dataclass(frozen=True)
class Decision:
    """What a purge does with one folder: ``delete`` (expired) or ``keep``, and why."""

    folder: OutputFolder
    action: str
    reason: str


def output_folders(out: Path) -> Iterator[OutputFolder]:
    """Every ``<out>/<job>/<party>/`` holding a manifest, in path order."""
    for manifest in sorted(out.glob(f"*/*/{MANIFEST}")):
        folder = manifest.parent
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        purpose = data.get("purpose")
        yield OutputFolder(str(data.get("job", folder.parent.name)),
                           str(data.get("party", folder.name)), folder,
                           purpose if isinstance(purpose, str) else None,
                           _finished(data, manifest), _size(folder))


def _finished(manifest: Mapping[str, Any], path: Path) -> float:
    """The latest step end in the manifest (start + wall time), else the file's mtime."""
    ends = []
    steps = manifest.get("steps")
    for entry in (steps.values() if isinstance(steps, dict) else []):
        if isinstance(entry, dict) and isinstance(entry.get("started_at"), str):
            try:
                start = datetime.fromisoformat(entry["started_at"]).timestamp()
            except ValueError:
                continue
            ends.append(start + float(entry.get("wall_s") or 0.0))
    return max(ends) if ends else path.stat().st_mtime


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def decide(folder: OutputFolder, purposes: Mapping[str, int], now: float,
           default_purpose: str | None = None) -> Decision:
    """Whether ``folder`` has outlived its purpose's retention at ``now``."""
    purpose = folder.purpose or default_purpose
    if purpose is None:
        return Decision(folder, "keep", "no purpose recorded (add `purpose:` to the job file "
                        "or give --purpose)")
    if purpose not in purposes:
        return Decision(folder, "keep", f"purpose {purpose!r} is not configured (known: "
                        f"{', '.join(sorted(purposes))})")
    expires = folder.finished + purposes[purpose] * DAY_S
    day = time.strftime("%Y-%m-%d", time.gmtime(expires))
    if expires <= now:
        return Decision(folder, "delete", f"retention for purpose {purpose!r} "
                        f"({purposes[purpose]} days) ended {day}")
    return Decision(folder, "keep", f"purpose {purpose!r}: kept until {day}")


def purge_outputs(out: Path, purposes: Mapping[str, int], *, dry_run: bool = False,
                  now: float | None = None, default_purpose: str | None = None
                  ) -> list[Decision]:
    """Decide every output folder under ``out``; delete the expired ones unless ``dry_run``."""
    t = time.time() if now is None else now
    decisions = [decide(f, purposes, t, default_purpose) for f in output_folders(out)]
    if dry_run:
        return decisions
    for decision in decisions:
        if decision.action == "delete":
            _delete(out, decision, t)
    return decisions


def _delete(out: Path, decision: Decision, now: float) -> None:
    folder = decision.folder
    shutil.rmtree(folder.path)
    _log(out / PURGE_LOG, {**asdict(folder), "path": str(folder.path),
                           "reason": decision.reason, "deleted_at": now})
    job_dir = folder.path.parent
    if job_dir.is_dir() and not any(job_dir.iterdir()):
        job_dir.rmdir()


@dataclass(frozen=True)
class ScratchItem:
    """Scratch of a run that has ended, found (and deleted unless a dry run) by a purge."""

    path: Path
    bytes: int
    reason: str = "scratch of a run that is no longer running"


def purge_scratch(root: Path, *, dry_run: bool = False, log: Path | None = None,
                  now: float | None = None) -> list[ScratchItem]:
    """Find (and unless ``dry_run`` delete) leftover scratch under ``root``; each deletion
    is appended to ``log`` (default ``<root>/purge-log.jsonl``)."""
    t = time.time() if now is None else now
    items = [ScratchItem(p, _size(p) if p.is_dir() else p.stat().st_size)
             for p in scratchdir.leftovers(root)]
    if dry_run:
        return items
    for item in items:
        scratchdir.remove([item.path])
        _log(log or root / PURGE_LOG, {"kind": "scratch", "path": str(item.path),
                                       "bytes": item.bytes, "reason": item.reason,
                                       "deleted_at": t})
    return items


def _log(path: Path, record: Mapping[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as log:
        log.write(json.dumps(record, sort_keys=True) + "\n")
