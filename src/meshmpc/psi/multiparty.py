"""Multi-party ECDH PSI: the receiver learns the common items, nothing pairwise.

Parties P_0..P_{m-1} (cluster order) with secret X25519 scalars a_i; receiver
R; the others N_0..N_{k-1} (cluster order without R); aggregator A = N_0.
K' = prod_{j != R} a_j, K = a_R * K'.

1. Every non-receiver's hashed set travels the ring of non-receivers only
   (never R): N_i exponentiates its H(y) by a_i and shuffles, each next
   non-receiver applies its scalar and shuffles, and the last one delivers
   H(y)^{K'} (32 bytes per item) to A.
2. A intersects the k sets and sends the common values C' = {H(y)^{K'}},
   shuffled, to R. R raises them to a_R.
3. R's own set: R sends H(x)^{a_R} (in its row order) through N_0..N_{k-1},
   each applies its scalar keeping the order, the last returns H(x)^{K}
   (truncated to t bytes) to R, which matches them against C'^{a_R}.
   (cardinality: the last non-receiver shuffles first.)
4. reveal="all": R sends the intersection, in the canonical order of H(x)^K,
   to every other party by a two-party ECDH PSI (R's set = the intersection
   only) in which the other party learns which of its rows those are, in R's
   order. See :func:`_distribute`.

Why no pairwise intersection shows: R only ever sees C' (already intersected
and shuffled) and its own values; every value a non-receiver sees is either
H(y)^S for an arc S of non-receiver scalars (two sets' values never carry the
same arc, so they are not comparable) or carries a_R, which no other party
can remove or add. A sees every non-receiver's H(y)^{K'}, shuffled: it learns
the sizes of all intersections among non-receivers' sets, not which items.
Semi-honest, no collusion of R with A (together they would learn R's
intersection with each non-receiver). Costs: a non-receiver exponentiates
every non-receiver's set and R's set once; R its own set and C'.
See protocols/psi-multiparty.md.
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
from meshmpc.psi.ecdh import ecdh_receiver, ecdh_sender
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
    return np.ascontiguousarray(np.concatenate(parts)) if parts else \
        np.empty((0, width), np.uint8)


def _shuffle(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows[random_permutation(len(rows))])


async def _ring_step(ctx: Context, ring: list[str], owner: str, aggregator: str,
                     mine: Digests, scalar: bytes, pool: GroupPool) -> np.ndarray | None:
    """This non-receiver's hop in the chain of ``owner``'s set (shuffled at every hop).

    Returns the fully exponentiated values when this party is the aggregator
    and also the chain's last hop.
    """
    k, me = len(ring), ring.index(ctx.party)
    hop = (me - ring.index(owner)) % k
    if hop == 0:
        values = await _apply(pool, "hash_exp", scalar, mine, POINT_BYTES)
    else:
        got = await ctx.recv(ring[(me - 1) % k], f"mp/ring/{owner}/{hop}")
        values = await _apply(pool, "exp", scalar, got, POINT_BYTES)
    values = _shuffle(values)
    if hop < k - 1:
        await ctx.send(ring[(me + 1) % k], f"mp/ring/{owner}/{hop + 1}", values)
        return None
    if ctx.party == aggregator:
        return values
    await ctx.send(aggregator, f"mp/final/{owner}", values)
    return None


async def _receiver_chain_step(ctx: Context, ring: list[str], receiver: str, reveal: Reveal,
                               scalar: bytes, pool: GroupPool, width: int) -> None:
    """A non-receiver's hop on R's values: exponentiate in order, pass on (or back to R)."""
    me = ring.index(ctx.party)
    prev = receiver if me == 0 else ring[me - 1]
    got = await ctx.recv(prev, f"mp/r/{me}")
    last = me == len(ring) - 1
    values = await _apply(pool, "exp", scalar, got, width if last else POINT_BYTES)
    if last and reveal == "cardinality":
        values = _shuffle(values)
    await ctx.send(receiver if last else ring[me + 1], f"mp/r/{me + 1}", values)


async def multiparty_psi(ctx: Context, parties: list[str], receiver: str, digests: Digests,
                         sizes: dict[str, int], reveal: Reveal, pool: GroupPool) -> PsiOutcome:
    """Run this party's side of multi-party ECDH PSI among ``parties``.

    reveal="receiver": only ``receiver`` learns its matched rows; "cardinality":
    only the count; "all": every party learns its matched rows, all in the
    same canonical order (for row alignment across parties).
    """
    if len(parties) < 2 or receiver not in parties or ctx.party not in parties:
        raise PsiError(f"party {ctx.party}: multi-party PSI needs the receiver {receiver!r} "
                       f"and this party among {parties}")
    ring = [p for p in parties if p != receiver]
    aggregator = ring[0]
    width = truncation_bytes(*sizes.values())
    scalar = new_scalar()
    peer_size = sum(sizes.values()) - sizes[ctx.party]
    if ctx.party == receiver:
        outcome = await _receive(ctx, ring, aggregator, reveal, digests, scalar, pool, width,
                                 peer_size)
    else:
        steps = [_ring_step(ctx, ring, owner, aggregator, digests, scalar, pool)
                 for owner in ring]
        local, _ = await asyncio.gather(
            asyncio.gather(*steps),
            _receiver_chain_step(ctx, ring, receiver, reveal, scalar, pool, width))
        if ctx.party == aggregator:
            await _aggregate(ctx, ring, receiver, dict(zip(ring, local, strict=True)))
        outcome = PsiOutcome(None, None, peer_size)
    if reveal == "all":
        return await _distribute(ctx, parties, receiver, digests, outcome, pool)
    return outcome


async def _aggregate(ctx: Context, ring: list[str], receiver: str,
                     local: dict[str, np.ndarray | None]) -> None:
    """Aggregator: intersect the non-receivers' final sets and hand the result to R."""
    common: np.ndarray | None = None
    for owner in ring:
        holder = ring[(ring.index(owner) - 1) % len(ring)]
        got = local[owner] if holder == ctx.party else await ctx.recv(holder, f"mp/final/{owner}")
        rows = np.asarray(got, dtype=np.uint8).reshape(-1, POINT_BYTES)
        if common is None:
            common = rows
        elif len(common):
            common = common[_core.psi_match(common, rows) >= 0]
    assert common is not None
    await ctx.send(receiver, "mp/common", _shuffle(common))


async def _receive(ctx: Context, ring: list[str], aggregator: str, reveal: Reveal,
                   digests: Digests, scalar: bytes, pool: GroupPool, width: int,
                   peer_size: int) -> PsiOutcome:
    """Receiver: send its values round, raise the common set to a_R, match."""
    own = await _apply(pool, "hash_exp", scalar, digests, POINT_BYTES)
    await ctx.send(ring[0], "mp/r/0", own)
    common = np.asarray(await ctx.recv(aggregator, "mp/common"), dtype=np.uint8)
    common = await _apply(pool, "exp", scalar, common.reshape(-1, POINT_BYTES), width)
    mine = np.asarray(await ctx.recv(ring[-1], f"mp/r/{len(ring)}"), dtype=np.uint8)
    mine = mine.reshape(-1, width)
    if len(mine) != len(digests):
        raise PsiError(f"party {ring[-1]} returned {len(mine)} values for "
                       f"{len(digests)} items of {ctx.party}")
    hits = np.flatnonzero(_core.psi_match(mine, common) >= 0).astype(np.int64) \
        if len(mine) and len(common) else np.empty(0, np.int64)
    if reveal == "cardinality":
        return PsiOutcome(None, len(hits), peer_size)
    return PsiOutcome(hits[canonical_order(mine[hits])], len(hits), peer_size)


async def _distribute(ctx: Context, parties: list[str], receiver: str, digests: Digests,
                      outcome: PsiOutcome, pool: GroupPool) -> PsiOutcome:
    """reveal="all": R tells each party its matched rows by a two-party ECDH PSI.

    R's set is the intersection only (in canonical order) and R sends the
    positions in that order, so every party's rows come out aligned. The
    other party learns the intersection's size (the output) and its rows;
    R learns nothing new (every one of its items matches).
    """
    if ctx.party == receiver:
        assert outcome.matched is not None
        inter = np.ascontiguousarray(digests[outcome.matched])

        async def tell(peer: str) -> None:
            sub = ctx.scope(f"mp-all-{peer}")
            await sub.send(peer, "mp/size", len(inter))
            peer_size = int(await sub.recv(peer, "mp/size"))
            await ecdh_receiver(sub, peer, inter, peer_size, "all", pool, keep_order=True)

        await asyncio.gather(*(tell(p) for p in parties if p != receiver))
        return outcome
    sub = ctx.scope(f"mp-all-{ctx.party}")
    await sub.send(receiver, "mp/size", len(digests))
    size = int(await sub.recv(receiver, "mp/size"))
    got = await ecdh_sender(sub, receiver, digests, size, "all", pool)
    return PsiOutcome(got.matched, got.cardinality, outcome.peer_size)
