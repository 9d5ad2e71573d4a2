"""Scratch folders that tell whether their owner still runs, so leftovers can be purged.

A process that writes scratch (a job run's step folders, a bucketed PSI's
bucket files) holds an exclusive ``flock`` on ``<folder>/.owner.lock`` for as
long as it uses the folder. The kernel drops the lock when the process ends,
however it ends, so ``meshmpc data purge`` can tell a live run's scratch
(locked) from a dead one's (free) without pids or clocks. Scratch files are
sealed (:mod:`meshmpc.data.sealedfile`), so what a crash leaves is ciphertext;
the purge removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCK = ".owner.lock"
SCRATCH_PREFIXES = (".psi-spill-", ".scratch-")
"""Folders that are scratch as a whole (removed when their own lock is free)."""
STEP_PREFIX = ".tmp-"
"""A job run's step folders inside ``<out>/<job>/<party>/`` (that folder holds the lock)."""
PARTIAL = re.compile(r"^\..+\.(?:partial-(\d+)|(\d+)\.partial)$")
"""Half-written files named with their writer's pid (PSI outputs, unbalanced caches)."""


class ScratchBusy(RuntimeError):
    """Another live process holds the folder (the same job and party running twice)."""


@contextlib.contextmanager
def held(directory: Path) -> Iterator[Path]:
    """Hold ``directory``'s owner lock while the block runs (made when missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScratchBusy(f"{directory} is in use by another running process") from None
        yield directory
    finally:
        os.close(fd)  # releases the lock


def in_use(directory: Path) -> bool:
    """True while a live process holds ``directory``'s owner lock."""
    try:
        fd = os.open(directory / LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def scratch_dir(parent: Path, prefix: str = ".scratch-") -> Iterator[Path]:
    """A fresh folder (mode 0700) under ``parent``, locked while used, deleted at the end
    whether the block succeeds or fails."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        with held(path):
            yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(root: Path) -> list[Path]:
    """Scratch under ``root`` whose owner has ended: bucket folders, step folders of runs
    no longer running, and half-written files of dead processes."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for lock in sorted(root.rglob(LOCK)):
        folder = lock.parent
        if in_use(folder):
            continue
        if folder.name.startswith(SCRATCH_PREFIXES):
            found.append(folder)
        else:  # a run's folder: its step folders are scratch
            found.extend(sorted(p for p in folder.glob(STEP_PREFIX + "*") if p.is_dir()))
    for path in sorted(root.rglob(".*")):
        match = PARTIAL.match(path.name)
        if match and path.is_file() and not _pid_alive(int(match.group(1) or match.group(2))):
            found.append(path)
    return [p for p in found if not any(q in p.parents for q in found)]


def remove(paths: list[Path]) -> int:
    """Delete ``paths`` (folders and files); return the bytes freed."""
    freed = 0
    for path in paths:
        if path.is_dir():
            freed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            freed += path.stat().st_size
            path.unlink()
    return freed
