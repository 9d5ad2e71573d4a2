"""Shared pieces of the PSI protocols: parameters agreement, outcomes, ordering.

Every PSI run starts with :func:`agree`: the parties exchange their job
parameters and set sizes, and any difference stops the run at once with an
error naming both parties and the field, before any key material moves.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.net import Context
from meshmpc.psi.errors import PsiError, PsiMismatchError

STATISTICAL_SECURITY = 40
WIRE_VERSION = 2  # 2: Chou-Orlandi base OT as in the paper, ristretto255 OPRF

Reveal = Literal["receiver", "all", "cardinality"]
Indices = npt.NDArray[np.int64]


@dataclass
class PsiOutcome:
    """What one party learnt from a PSI run.

    ``matched``: indices into this party's digests of the intersection, in the
    canonical order shared by every party that learns it (None when this party
    learns no intersection). ``cardinality``: the intersection size, when known.
    ``steps``: wall time per protocol step. ``session``: protocol state a
    following batch (bucket) of the same job may reuse (e.g. KKRT base OTs).
    """

    matched: Indices | None
    cardinality: int | None
    peer_size: int
    steps: dict[str, float] = field(default_factory=dict)
    session: Any = None


class Stopwatch:
    """Wall time per protocol step (``lap`` closes the current step), and in
    ``cpu_steps`` the CPU time of this process (every thread) over the same step:
    a step whose CPU is far below its wall time was waiting (peer, disk, load)."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.cpu_steps: dict[str, float] = {}
        self._last = time.perf_counter()
        self._last_cpu = time.process_time()

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.steps[name] = round(self.steps.get(name, 0.0) + now - self._last, 4)
        self.cpu_steps[name] = round(self.cpu_steps.get(name, 0.0) + cpu - self._last_cpu, 4)
        self._last, self._last_cpu = now, cpu

    def report(self) -> dict[str, float]:
        """Wall time per step, and CPU time under ``<step>.cpu``."""
        return {**self.steps, **{f"{k}.cpu": v for k, v in self.cpu_steps.items()}}


async def agree(ctx: Context, peers: list[str], params: dict[str, Any],
                size: int) -> dict[str, int]:
    """Exchange parameters and set sizes with ``peers``; raise on any difference.

    Returns each party's set size (sizes are public in every protocol here).
    """
    mine = {"version": WIRE_VERSION, **params}
    hello_out = {"params": mine, "size": int(size)}
    for peer in peers:
        await ctx.send(peer, "psi/hello", hello_out)
    hellos = {peer: await ctx.recv(peer, "psi/hello") for peer in peers}
    sizes = {ctx.party: int(size)}
    for peer, hello in hellos.items():
        theirs = hello.get("params", {}) if isinstance(hello, dict) else {}
        for name in sorted(set(mine) | set(theirs)):
            if mine.get(name) != theirs.get(name):
                raise PsiMismatchError(ctx.party, peer, name, mine.get(name), theirs.get(name))
        sizes[peer] = int(hello["size"])
    return sizes


def truncation_bytes(*sizes: int) -> int:
    """Bytes kept of each final value: lambda + sum log2(n) bits (HFH99), at least 8.

    With lambda = 40 the probability that any two distinct items collide is at
    most 2^-40 (union bound over the n1 * n2 pairs).
    """
    bits = STATISTICAL_SECURITY + sum(math.ceil(math.log2(max(n, 2))) for n in sizes)
    return max(8, math.ceil(bits / 8))


def canonical_order(values: npt.NDArray[np.uint8]) -> Indices:
    """Order of rows sorted by their bytes (width <= 16): the same on every party."""
    n, w = values.shape
    padded = np.zeros((n, 16), dtype=np.uint8)
    padded[:, :w] = values
    words = padded.view(">u8")
    return np.lexsort((words[:, 1], words[:, 0])).astype(np.int64)


def random_permutation(n: int) -> Indices:
    """A uniformly random permutation drawn from OS randomness (no numpy RNG)."""
    return _core.psi_permutation(np.frombuffer(os.urandom(8 * n), dtype=np.uint64))


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges covering n items in chunks of ``size``."""
    return [(s, min(s + size, n)) for s in range(0, n, size)]


async def exchange_sizes(ctx: Context, peers: list[str], size: int, tag: str) -> dict[str, int]:
    """Tell ``peers`` this party's set size and learn theirs (sizes are public)."""
    for peer in peers:
        await ctx.send(peer, f"psi/size/{tag}", int(size))
    sizes = {peer: int(await ctx.recv(peer, f"psi/size/{tag}")) for peer in peers}
    sizes[ctx.party] = int(size)
    return sizes


def received_positions(obj: Any, n: int, peer: str) -> Indices:
    """Intersection positions a peer sent (``reveal="all"``), checked before use.

    They index this party's (shuffled) items, so they must be distinct integers in
    ``0..n-1`` in a flat list or integer array; anything else is the peer's fault.
    """
    if isinstance(obj, list) and all(type(v) is int for v in obj):
        obj = np.array(obj, dtype=np.int64) if obj else np.empty(0, np.int64)
    if not isinstance(obj, np.ndarray) or obj.ndim != 1 or (
            obj.size and not np.issubdtype(obj.dtype, np.integer)):
        raise PsiError(f"party {peer} sent intersection positions that are not a flat list "
                       f"of integers ({type(obj).__name__})")
    if obj.size and (int(obj.min()) < 0 or int(obj.max()) >= n):
        raise PsiError(f"party {peer} sent an intersection position outside 0..{n - 1}")
    positions = obj.astype(np.int64)
    seen = np.zeros(n, dtype=np.bool_)  # O(n): np.unique sorted or hashed 10^7 positions
    seen[positions] = True
    if int(np.count_nonzero(seen)) != len(positions):
        raise PsiError(f"party {peer} sent the same intersection position twice")
    return positions
