"""semi2k: additive secret sharing over Z_2^64 / Z_2^128 among 2..N parties.

Security model: semi-honest adversary corrupting up to N-1 of N parties
(dishonest majority), given correlated randomness from a secure source (the
OT-based provider); the dealer provider is for tests and benchmarks only.
Nothing is revealed beyond the outputs a caller reveals: every opened value
is a share masked by a fresh uniform triple component. Follows SecureML
(Mohassel-Zhang 2017) for Beaver and matrix triples and local truncation;
see protocols/semi2k.md for rounds and bytes per operator.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from meshmpc import _core
from meshmpc.gc import GcSign
from meshmpc.mpc import circuits, millionaire
from meshmpc.mpc.errors import MpcError, UnsupportedOperationError
from meshmpc.mpc.millionaire import MillionaireSign
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import Ring
from meshmpc.mpc.suite import Share, Suite
from meshmpc.mpc.triples import TripleProvider
from meshmpc.net import Context
from meshmpc.ot import OtPool

MASK_CACHE = 4  # opened matrices remembered for reuse (each holds two arrays of |X|)
COMPARISONS = ("circuit", "gc", "millionaire")
"""circuit: bit-sliced GMW carry circuit with AND triples (default);
gc: half-gates garbled circuit over IKNP correlated OT (2 parties);
millionaire: CrypTFlow2's digit-wise comparison, 1-of-16 OT per 4-bit digit and
29 AND gates per element (2 parties; meshmpc.mpc.millionaire)."""


class Semi2k(Suite):
    """Additive sharing x = sum_i x_i; party i holds the ring array x_i."""

    name = "semi2k"

    def __init__(self, ctx: Context, ring: Ring, provider: TripleProvider,
                 comparison: str = "circuit") -> None:
        super().__init__(ctx, ring)
        if len(ctx.parties) < 2:
            raise MpcError("semi2k needs at least 2 parties")
        if comparison not in COMPARISONS:
            raise MpcError(f"semi2k comparison must be one of {COMPARISONS}, got {comparison!r}")
        if comparison in ("gc", "millionaire") and len(ctx.parties) != 2:
            raise MpcError(f"semi2k comparison={comparison!r} needs exactly 2 parties, got "
                           f"{len(ctx.parties)}; use comparison='circuit'")
        self.provider = provider
        self.comparison = comparison
        self.leader = ctx.index == 0
        self._gc: GcSign | None = None
        self._mill: MillionaireSign | None = None
        self._masks: OrderedDict[int, tuple[Any, ...]] = OrderedDict()
        self._transposes: OrderedDict[int, tuple[Any, ...]] = OrderedDict()

    def lift(self, fn: Callable[..., np.ndarray], *shares: Share) -> Share:
        return fn(*shares)

    def components(self, x: Share) -> list[np.ndarray]:
        return [x]

    def public(self, c: np.ndarray) -> Share:
        return c.copy() if self.leader else np.zeros_like(c)

    def add_public(self, x: Share, c: np.ndarray) -> Share:
        return self.ring.add(x, c) if self.leader else self.ring.add(x, np.zeros_like(c))

    def bpublic(self, c: np.ndarray) -> Share:
        return c.copy() if self.leader else np.zeros_like(c)

    # --- opening ----------------------------------------------------------------
    async def _open(self, parts: Sequence[np.ndarray], xor: bool = False) -> list[np.ndarray]:
        """Open share arrays (sum, or XOR for words): one message per part and peer.

        Each part travels as its own top-level array (raw buffers when large), and
        the sum accumulates in place into a received array: no concatenation copy.
        """
        ctx = self.ctx.scope("open")
        tag = self.tag("v")
        flats = [np.ascontiguousarray(p).reshape(-1) for p in parts]
        for i, flat in enumerate(flats):
            await ctx.broadcast(f"{tag}/{i}", flat)
        out = []
        for i, (part, flat) in enumerate(zip(parts, flats, strict=True)):
            received = list((await ctx.recv_all(f"{tag}/{i}")).values())
            total = received[0] if received[0].flags.writeable else received[0].copy()
            for other in [*received[1:], flat]:
                if xor:
                    np.bitwise_xor(total, other, out=total)
                else:
                    self.ring.iadd(total, other)
            out.append(total.reshape(part.shape))
        return out

    # --- input / output ---------------------------------------------------------
    async def input(self, owner: str, value: np.ndarray | None, shape: Sequence[int]) -> Share:
        """The owner sends each peer a PRG seed; its own share is the remainder."""
        self.check_party(owner)
        self.next_nonce()
        ctx = self.ctx.scope("input")
        if self.ctx.party != owner:
            seed = await ctx.recv(owner, self.tag("seed"))
            return self.ring.random(Prg(bytes(seed)), shape, 0)
        if value is None or self.ring.shape(value) != tuple(shape):
            raise MpcError(f"party {owner}: input must have shape {tuple(shape)}")
        share = value
        for peer in self.ctx.peers:
            seed = fresh_key()
            await ctx.send(peer, self.tag("seed"), seed)
            share = self.ring.sub(share, self.ring.random(Prg(seed), shape, 0))
        return share

    async def reveal(self, x: Share, to: str | None = None) -> np.ndarray | None:
        self.next_nonce()
        if to is None:
            return (await self._open([x]))[0]
        self.check_party(to)
        ctx = self.ctx.scope("reveal")
        if self.ctx.party != to:
            await ctx.send(to, self.tag("v"), x)
            return None
        total = x
        for other in (await ctx.recv_all(self.tag("v"))).values():
            total = self.ring.add(total, other)
        return total

    # --- multiplication ---------------------------------------------------------
    async def mul(self, x: Share, y: Share) -> Share:
        """Beaver: open e = x - a, f = y - b; z = c + e b + f a + e f (leader)."""
        self.next_nonce()
        ring = self.ring
        a, b, c = await self.provider.arith_triples(ring, ring.shape(x))
        e, f = await self._open([ring.sub(x, a), ring.sub(y, b)])
        right = ring.add(b, f) if self.leader else b  # e b + e f = e (b + f)
        return ring.add(c, ring.add(ring.mul(e, right), ring.mul(f, a)))

    async def matmul(self, x: Share, y: Share) -> Share:
        """Matrix Beaver: opens X - A and Y - B, so traffic is |X| + |Y|, not |XY|.

        The opened X - A is remembered for the last few left operands: a later
        product by the same X or by its transpose (X @ w, then X^T @ r in a
        gradient step, or every iteration of a training loop) opens only Y - B'
        against a fresh triple that reuses A (A^T B' for the transpose).
        """
        self.next_nonce()
        ring = self.ring
        sx, sy = ring.shape(x), ring.shape(y)
        if len(sx) != 2 or len(sy) != 2 or sx[1] != sy[0]:
            raise MpcError(f"matmul needs (m,k) @ (k,p) shares, got {sx} @ {sy}")
        known = self._known_mask(x)
        if known is None:
            a, b, c, handle = await self.provider.matrix_triples(ring, sx, sy)
            e, f = await self._open([ring.sub(x, a), ring.sub(y, b)])
            self._remember_mask(x, a, e, handle)
        else:
            a, e, handle, transposed = known
            a, b, c, _ = await self.provider.matrix_triples(ring, sx, sy,
                                                              reuse=(handle, transposed))
            (f,) = await self._open([ring.sub(y, b)])
        # z = c + e b + a f (+ e f at the leader), with e b + e f = e (b + f)
        right = ring.add(b, f) if self.leader else b
        return ring.add(c, ring.add(ring.matmul(e, right), ring.matmul(a, f)))

    def clear_mask_cache(self) -> None:
        """Forget opened matrices (benchmarks time one product from scratch)."""
        self._masks.clear()
        self._transposes.clear()

    def transpose(self, x: Share, axes: Sequence[int] | None = None) -> Share:
        if not (x.ndim == 2 and axes in (None, (1, 0), [1, 0])):
            return self.ring.transpose(x, axes)
        out = x.T  # a view: a later product by it reuses x's opened mask, no copy needed
        _bounded_put(self._transposes, id(out), (out, x))
        return out

    def _remember_mask(self, x: Share, a: np.ndarray, e: np.ndarray, handle: object) -> None:
        _bounded_put(self._masks, id(x), (x, a, e, handle))

    def _known_mask(self, x: Share) -> tuple[np.ndarray, np.ndarray, object, bool] | None:
        """(A, E, handle, transposed) when x, or the matrix x transposes, was opened."""
        entry = self._masks.get(id(x))
        if entry is not None and entry[0] is x:
            return entry[1], entry[2], entry[3], False
        lineage = self._transposes.get(id(x))
        if lineage is None or lineage[0] is not x:
            return None
        entry = self._masks.get(id(lineage[1]))
        if entry is None or entry[0] is not lineage[1]:
            return None
        return entry[1].T, entry[2].T, entry[3], True  # views: numpy's matmul takes them

    # --- truncation ---------------------------------------------------------------
    async def trunc(self, x: Share, bits: int) -> Share:
        """2 parties: SecureML local shift; N > 2: one opening with a truncation pair."""
        self.next_nonce()
        if len(self.ctx.parties) == 2:
            if self.leader:
                return self.ring.sar(x, bits)
            return self.ring.neg(self.ring.sar(self.ring.neg(x), bits))
        return await self._trunc_with_pair(x, bits)

    async def trunc_exact(self, x: Share, bits: int) -> Share:
        """floor(x / 2^bits) exactly for |x| < 2^(l-2): the pair method plus the borrow
        of the low bits, [c mod 2^bits < r mod 2^bits], from one comparison circuit
        whose generate/propagate layer is local (c is public). Z_2^64 only."""
        self.next_nonce()
        if self.ring.bits != 64:
            raise UnsupportedOperationError("semi2k: exact truncation runs over Z_2^64 only")
        return await self._trunc_with_pair(x, bits, exact=True)

    async def _trunc_with_pair(self, x: Share, bits: int, exact: bool = False) -> Share:
        """Open c = x + 2^(l-2) + r; the wrap of the top bit is linear in msb(r).

        Probabilistic form: off by at most one unit in the last place for
        |x| < 2^(l-2), with no failure event. The exact form subtracts the borrow.
        """
        ring, width = self.ring, self.ring.bits
        shape = ring.shape(x)
        r, r_low, r_msb, *under = await self.provider.trunc_pairs(ring, shape, bits, exact)
        bias = ring.broadcast_to(ring.from_int(np.asarray(1 << (width - 2), dtype=object)), shape)
        (c,) = await self._open([ring.add(self.add_public(x, bias), r)])
        c_msb = ring.from_int(ring.msb(c))
        c_low = ring.shr(ring.shr(ring.shl(c, 1), 1), bits)
        # carry = c_msb xor r_msb = c_msb + r_msb - 2 c_msb r_msb (c_msb public)
        one = ring.broadcast_to(ring.from_int(1), shape)
        two = ring.broadcast_to(ring.from_int(2), shape)
        carry = self.add_public(ring.mul(r_msb, ring.sub(one, ring.mul(two, c_msb))), c_msb)
        top = ring.broadcast_to(ring.from_int(np.asarray(1 << (width - 1 - bits), dtype=object)),
                                shape)
        shifted_bias = ring.broadcast_to(
            ring.from_int(np.asarray(1 << (width - 2 - bits), dtype=object)), shape)
        out = self.add_public(ring.sub(ring.mul(carry, top), r_low),
                              ring.sub(c_low, shifted_bias))
        if not exact:
            return out
        n = int(np.prod(shape, dtype=np.int64))
        no_borrow = await circuits.public_at_least(self, c.reshape(-1), under[0], bits)
        keep = await self.b2a_plane(no_borrow, n)  # 1 - borrow
        return self.add_public(ring.add(out, ring.reshape(keep, shape)),
                               ring.broadcast_to(ring.from_int(-1), shape))

    # --- boolean ---------------------------------------------------------------
    async def band(self, x: Share, y: Share) -> Share:
        self.next_nonce()
        a, b, c = await self.provider.and_triples(x.shape)
        d, e = await self._open([x ^ a, y ^ b], xor=True)
        z = c ^ (d & b) ^ (e & a)
        return z ^ (d & e) if self.leader else z

    async def msb_planes(self, x: Share) -> Share:
        if self.ring.bits != 64:
            raise UnsupportedOperationError("semi2k: bit decomposition needs Z_2^64")
        if self.comparison == "gc":
            return await self._msb_plane_gc(x)
        if self.comparison == "millionaire":
            if self._mill is None:
                pool = await OtPool.setup(self.ctx.scope("mill-ot"), self.ctx.peers[0])
                self._mill = MillionaireSign(self.ctx, pool, sender=self.leader)
            return await millionaire.msb_plane(self, self._mill, x)
        mine = circuits.bitslice(x)
        zero = np.zeros_like(mine)
        operands = [mine if j == self.ctx.index else zero for j in range(len(self.ctx.parties))]
        return await circuits.msb_of_sum(self, operands)

    async def _msb_plane_gc(self, x: Share) -> Share:
        """Sign bits by half-gates garbling (meshmpc.gc): party 0 garbles."""
        if self._gc is None:
            peer = self.ctx.peers[0]
            pool = await OtPool.setup(self.ctx.scope("gc-ot"), peer)
            self._gc = GcSign(self.ctx, pool, garbler=self.leader)
        bits = (await self._gc.msb_shares(x)).astype(np.uint64)
        plane = np.empty(circuits.plane_words(bits.size), dtype=np.uint64)
        _core.ring_u64_to_plane(bits, plane)
        return plane

    async def b2a_plane(self, bits: Share, n: int) -> Share:
        """With a daBit r: open c = b ^ r, then b = c + r - 2 c r (c public)."""
        self.next_nonce()
        ring = self.ring
        plane, r = await self.provider.dabits(ring, n)
        (c_plane,) = await self._open([bits ^ plane], xor=True)
        c = ring.from_int(circuits.unslice_plane(c_plane, n))
        one = ring.from_int(np.ones(n, np.int64))
        out = ring.mul(r, ring.sub(one, ring.add(c, c)))
        return self.add_public(out, c)


def _bounded_put(cache: OrderedDict[int, tuple[Any, ...]], key: int,
                 value: tuple[Any, ...]) -> None:
    """Insert, evicting the oldest entries beyond MASK_CACHE (the value pins its arrays,
    so an id is never reused while its entry lives)."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > MASK_CACHE:
        cache.popitem(last=False)
