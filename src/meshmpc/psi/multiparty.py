"""Multi-party ECDH PSI: only the designated receiver learns the common items.

Generalises HFH99 to m parties P_0..P_{m-1} (cluster order) with secret X25519
scalars a_i. Receiver R; aggregator A = the first party other than R.

1. Every party's hashed set travels the ring once: P_i exponentiates its own
   H(x) by a_i and passes it on; each next party exponentiates by its own
   scalar and passes it on, until all m scalars are applied. Values of a
   non-receiver's set are shuffled at every hop and the last hop delivers them
   (fully exponentiated, truncated to t bytes) to A. R's values keep their order
   (shuffled only in cardinality mode) and return to R.
2. A intersects the non-receivers' fully exponentiated sets and sends the
   result, shuffled, to R; R matches its own values against it.

Semi-honest, no collusion (R and A together would learn R's intersection with
each non-receiver). Leakage beyond the output: A learns the size of the
intersection of all non-receivers' sets and of each pair of them; R learns the
size of the non-receivers' common set; every party learns all set sizes. No
party learns any pairwise intersection's elements. Cost: every party performs
one scalar multiplication per item of every set (sum of all set sizes);
32 bytes per item per hop, t bytes on the last. See protocols/psi-multiparty.md.
"""

from __future__ import annotations

import asyncio

import numpy as np

from meshmpc import _core
from meshmpc.net import Context
from meshmpc.psi.common import (
    PsiOutcome,
    Reveal,
    canonical_order,
    chunks,
    random_permutation,
    truncation_bytes,
)
from meshmpc.psi.errors import PsiError
from meshmpc.psi.group import POINT_BYTES, GroupPool, as_rows, new_scalar
from meshmpc.psi.keys import Digests

CHUNK = 8192


async def _apply(pool: GroupPool, fn: str, scalar: bytes, data: np.ndarray,
                 width: int) -> np.ndarray:
    """Run a group operation over all rows in chunks on the pool; concatenate the results."""
    size = 16 if fn == "hash_exp" else POINT_BYTES
    rows = np.ascontiguousarray(data).reshape(-1, size)
    jobs = [pool.run(fn, scalar, rows[s:e].tobytes()) for s, e in chunks(len(rows), CHUNK)]
    parts = [as_rows(r, POINT_BYTES)[:, :width] for r in await asyncio.gather(*jobs)]
    return np.concatenate(parts) if parts else np.empty((0, width), np.uint8)


def _shuffle(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows[random_permutation(len(rows))])


async def _chain_step(ctx: Context, parties: list[str], owner: str, receiver: str,
                      aggregator: str, reveal: Reveal, mine: Digests, scalar: bytes,
                      pool: GroupPool, width: int) -> np.ndarray | None:
    """This party's hop in the chain of ``owner``'s set.

    Returns the final values when this party is also their destination.
    """
    m, me = len(parties), parties.index(ctx.party)
    hop = (me - parties.index(owner)) % m
    if hop == 0:
        values = await _apply(pool, "hash_exp", scalar, mine, POINT_BYTES)
    else:
        prev = parties[(me - 1) % m]
        values = await _apply(pool, "exp", scalar, await ctx.recv(prev, f"mp/{owner}/{hop}"),
                              POINT_BYTES if hop < m - 1 else width)
    keep_order = owner == receiver and not (reveal == "cardinality" and hop == m - 1)
    if not keep_order:
        values = _shuffle(values)
    if hop < m - 1:
        await ctx.send(parties[(me + 1) % m], f"mp/{owner}/{hop + 1}", values)
        return None
    dest = receiver if owner == receiver else aggregator
    if dest == ctx.party:
        return values
    await ctx.send(dest, f"mp/final/{owner}", values)
    return None


async def multiparty_psi(ctx: Context, parties: list[str], receiver: str, digests: Digests,
                         sizes: dict[str, int], reveal: Reveal, pool: GroupPool) -> PsiOutcome:
    """Run this party's side of multi-party ECDH PSI among ``parties``."""
    if reveal == "all":
        raise PsiError("multi-party PSI reveals the intersection to the receiver only; "
                       "use --reveal receiver or cardinality")
    aggregator = next(p for p in parties if p != receiver)
    width = truncation_bytes(*sizes.values())
    scalar = new_scalar()
    steps = [_chain_step(ctx, parties, owner, receiver, aggregator, reveal, digests, scalar,
                         pool, width) for owner in parties]
    local = dict(zip(parties, await asyncio.gather(*steps), strict=True))
    if ctx.party == aggregator:
        await _aggregate(ctx, parties, receiver, width, local)
    if ctx.party != receiver:
        return PsiOutcome(None, None, sum(sizes.values()) - sizes[ctx.party])
    return await _receive(ctx, parties, aggregator, reveal, width,
                          sum(sizes.values()) - sizes[ctx.party])


async def _aggregate(ctx: Context, parties: list[str], receiver: str, width: int,
                     local: dict[str, np.ndarray | None]) -> None:
    """Aggregator: intersect the non-receivers' final sets and hand the result to R."""
    sets: list[np.ndarray] = []
    for owner in parties:
        if owner == receiver:
            continue
        holder = parties[(parties.index(owner) - 1) % len(parties)]
        got = local[owner] if holder == ctx.party else await ctx.recv(holder, f"mp/final/{owner}")
        sets.append(np.asarray(got, dtype=np.uint8))
    common = sets[0].reshape(-1, width)
    for other in sets[1:]:
        if len(common) == 0:
            break
        common = common[_core.psi_match(common, other.reshape(-1, width)) >= 0]
    await ctx.send(receiver, "mp/common", _shuffle(common))


async def _receive(ctx: Context, parties: list[str], aggregator: str, reveal: Reveal,
                   width: int, peer_size: int) -> PsiOutcome:
    """Receiver: match its own fully exponentiated values against the common set."""
    mine_holder = parties[(parties.index(ctx.party) - 1) % len(parties)]
    mine = np.asarray(await ctx.recv(mine_holder, f"mp/final/{ctx.party}"), dtype=np.uint8)
    common = np.asarray(await ctx.recv(aggregator, "mp/common"), dtype=np.uint8)
    mine, common = mine.reshape(-1, width), common.reshape(-1, width)
    hits = np.flatnonzero(_core.psi_match(mine, common) >= 0).astype(np.int64)
    if reveal == "cardinality":
        return PsiOutcome(None, len(hits), peer_size)
    return PsiOutcome(hits[canonical_order(mine[hits])], len(hits), peer_size)
