"""ECDH PSI (Meadows 1986; Huberman-Franklin-Hogg 1999) over X25519.

The group operations run in C (meshmpc.psi.group): Intel's 8-way multi-buffer
X25519 on CPUs with AVX-512 IFMA, libsodium elsewhere, with identical results.

Receiver R holds X, sender S holds Y; a, b are fresh secret scalars.

1. R -> S: H(x)^a for x in X (chunks, R's order).
   S -> R: H(y)^b for y in Y (chunks, in a random order pi).
2. S -> R: H(x)^ab truncated to t bytes, in R's order (shuffled in cardinality mode).
   R computes H(y)^ba truncated for S's values and matches.
3. (reveal="all") R -> S: the positions (in S's shuffled order) of the matches,
   in the canonical order (sorted by the shared value H(.)^ab).

Semi-honest security under DDH in the random-oracle model. R learns the
intersection (or only its size in cardinality mode) and |Y|; S learns |X| (and
the intersection when reveal="all"). Costs: each party 2n scalar
multiplications; bytes per item: 32 from R, 32 + t from S (t = ceil((40 + log2
|X| + log2 |Y|) / 8), 10 bytes at 2^20 x 2^20), so two rounds.
See protocols/psi-ecdh.md.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Sequence

import numpy as np

from meshmpc import _core
from meshmpc.net import Context
from meshmpc.progress import Phase, Progress
from meshmpc.psi.common import (
    PsiOutcome,
    Reveal,
    canonical_order,
    chunks,
    random_permutation,
    received_positions,
    truncation_bytes,
)
from meshmpc.psi.errors import PsiError
from meshmpc.psi.group import POINT_BYTES, GroupPool, as_rows, new_scalar
from meshmpc.psi.keys import Digests
from meshmpc.psi.x25519 import LowOrderPointError

CHUNK = 8192


async def _send_mapped(ctx: Context, peer: str, tag: str,
                       jobs: Sequence[Awaitable[bytes]], width: int | None = None,
                       phase: Phase | None = None) -> None:
    """Await chunk jobs in order and send each result (truncated to width) as it is ready."""
    for k, job in enumerate(jobs):
        rows = as_rows(await job, POINT_BYTES)
        await ctx.send(peer, f"{tag}/{k}", np.ascontiguousarray(rows[:, :width]) if width else rows)
        if phase is not None:
            phase.advance(len(rows))


def _schedule(pool: GroupPool, fn: str, scalar: bytes, data: bytes) -> asyncio.Future[bytes]:
    return asyncio.ensure_future(pool.run(fn, scalar, data))


async def _exp_checked(pool: GroupPool, scalar: bytes, data: bytes, peer: str,
                       first: int) -> bytes:
    """Exponentiate values received from ``peer`` (the first at index ``first``).

    A low-order point is never a hashed item: name the peer and the value.
    """
    try:
        return await pool.run("exp", scalar, data)
    except LowOrderPointError as exc:
        raise PsiError(f"ECDH PSI: value {first + exc.index} received from party {peer} is a "
                       "low-order X25519 point, which an honest party never sends; stop the "
                       f"job and check party {peer}'s node") from exc


async def _exp_incoming(ctx: Context, peer: str, tag: str, n: int, pool: GroupPool,
                        scalar: bytes, phase: Phase) -> list[asyncio.Future[bytes]]:
    """Receive the peer's chunks and schedule their exponentiation as they arrive.

    ``phase`` counts exponentiated values as each chunk's job completes.
    """
    jobs: list[asyncio.Future[bytes]] = []
    for k, (s, e) in enumerate(chunks(n, CHUNK)):
        rows = np.asarray(await ctx.recv(peer, f"{tag}/{k}"))
        if rows.dtype != np.uint8 or rows.shape != (e - s, POINT_BYTES):
            raise PsiError(f"ECDH PSI: chunk {k} from party {peer} holds {rows.dtype} "
                           f"{rows.shape}, expected {e - s} points of {POINT_BYTES} bytes; "
                           f"stop the job and check party {peer}'s node")
        job = asyncio.ensure_future(
            _exp_checked(pool, scalar, np.ascontiguousarray(rows).tobytes(), peer, s))
        job.add_done_callback(functools.partial(_count_done, phase, e - s))
        jobs.append(job)
    return jobs


def _count_done(phase: Phase, count: int, _job: asyncio.Future[bytes]) -> None:
    phase.advance(count)


def _phase(progress: Progress | None, n: int, peer: str, peer_size: int) -> Phase:
    """Either role's long phase: its n keys hashed and raised, then the peer's values raised.

    One phase for both, since both share the worker pool: its rate and ETA
    are those of the pool.
    """
    return (progress or Progress.off()).phase(
        f"ecdh: exponentiations (own keys, then {peer}'s)", n + peer_size, "points")


async def _recv_rows(ctx: Context, peer: str, tag: str, n: int, width: int) -> np.ndarray:
    parts = [await ctx.recv(peer, f"{tag}/{k}") for k, _ in enumerate(chunks(n, CHUNK))]
    return np.concatenate(parts) if parts else np.empty((0, width), np.uint8)


def _hash_jobs(pool: GroupPool, scalar: bytes, digests: Digests) -> list[asyncio.Future[bytes]]:
    return [_schedule(pool, "hash_exp", scalar, digests[s:e].tobytes())
            for s, e in chunks(len(digests), CHUNK)]


async def ecdh_receiver(ctx: Context, peer: str, digests: Digests, peer_size: int,
                        reveal: Reveal, pool: GroupPool, keep_order: bool = False,
                        progress: Progress | None = None) -> PsiOutcome:
    """Receiver side of two-party ECDH PSI; returns the matches in canonical order.

    ``keep_order``: report the matches in the receiver's row order instead
    (multi-party PSI uses it to hand its own canonical order on).
    """
    a, n = new_scalar(), len(digests)
    width = truncation_bytes(n, peer_size)
    phase = _phase(progress, n, peer, peer_size)
    send_own = _send_mapped(ctx, peer, "ecdh/xa", _hash_jobs(pool, a, digests), phase=phase)
    incoming, mine_final, _ = await asyncio.gather(
        _exp_incoming(ctx, peer, "ecdh/yb", peer_size, pool, a, phase),
        _recv_rows(ctx, peer, "ecdh/xab", n, width),
        send_own,
    )
    peer_final = (np.concatenate([as_rows(await j, POINT_BYTES)[:, :width] for j in incoming])
                  if incoming else np.empty((0, width), np.uint8))
    phase.finish()
    where = _core.psi_match(mine_final, peer_final) if n else np.empty(0, np.int64)
    mine = np.flatnonzero(where >= 0).astype(np.int64)
    if reveal == "cardinality":
        return PsiOutcome(None, len(mine), peer_size)
    if not keep_order:
        mine = mine[canonical_order(mine_final[mine])]
    if reveal == "all":
        await ctx.send(peer, "ecdh/result", where[mine])
    return PsiOutcome(mine, len(mine), peer_size)


async def ecdh_sender(ctx: Context, peer: str, digests: Digests, peer_size: int,
                      reveal: Reveal, pool: GroupPool,
                      progress: Progress | None = None) -> PsiOutcome:
    """Sender side: answers the receiver's values and sends its own, shuffled."""
    b, n = new_scalar(), len(digests)
    width = truncation_bytes(peer_size, n)
    perm = random_permutation(n)
    phase = _phase(progress, n, peer, peer_size)
    send_own = _send_mapped(ctx, peer, "ecdh/yb", _hash_jobs(pool, b, digests[perm]),
                            phase=phase)
    answer = _answer(ctx, peer, peer_size, reveal, pool, b, width, phase)
    await asyncio.gather(send_own, answer)
    phase.finish()
    if reveal != "all":
        return PsiOutcome(None, None, peer_size)
    positions = received_positions(await ctx.recv(peer, "ecdh/result"), n, peer)
    return PsiOutcome(perm[positions], len(positions), peer_size)


async def _answer(ctx: Context, peer: str, peer_size: int, reveal: Reveal, pool: GroupPool,
                  b: bytes, width: int, phase: Phase) -> None:
    """Exponentiate the receiver's values and return them truncated (shuffled if asked)."""
    jobs = await _exp_incoming(ctx, peer, "ecdh/xa", peer_size, pool, b, phase)
    if reveal != "cardinality":
        await _send_mapped(ctx, peer, "ecdh/xab", jobs, width)
        return
    rows = [as_rows(await j, POINT_BYTES)[:, :width] for j in jobs]
    allrows = np.concatenate(rows) if rows else np.empty((0, width), np.uint8)
    allrows = allrows[random_permutation(len(allrows))]
    for k, (s, e) in enumerate(chunks(len(allrows), CHUNK)):
        await ctx.send(peer, f"ecdh/xab/{k}", np.ascontiguousarray(allrows[s:e]))
