"""OT-based correlated randomness for semi2k: no trusted party.

Security: semi-honest, any number of corrupted parties (dishonest majority),
inheriting the IKNP OT extension's model (protocols/ot.md). Every party draws
its own random shares; the cross terms between two parties come from OTs.

* Arithmetic triples: c = (sum a_i)(sum b_i). Each cross product a_i b_j is a
  Gilboa product (Gilboa, CRYPTO 1999): party j's 64 bits of b_j are its
  choices in 64 arithmetic correlated OTs (``send_correlated`` of meshmpc.ot)
  whose sender inputs are a_i 2^k; the receiver gets m0 + b_jk a_i 2^k, the
  sender keeps -m0. 64 OTs and 64 x (16 + 8) bytes per ordered pair and element.
* Matrix triples A @ B: the receiver's choices are the bits of its A entries
  and the sender's correlation is its row of B (up to two columns per OT), so
  the cost is 64 mk ceil(p/2) OTs per ordered pair.
* AND triples: each cross term a_i & b_j from one random OT per bit, with one
  correction bit from the sender (so that a_i is the same for every peer).
* daBits: each party draws random bits r_i; the arithmetic sharing of their XOR
  is folded in N - 1 steps b <- b + r_i - 2 b r_i, each product b r_i by
  correlated OTs towards party i.

* Truncation pairs (N > 2 parties, exact truncation): r from 64 daBits, one
  per bit, so (r mod 2^63) >> f and msb(r) are sums of the bits' arithmetic
  shares and r mod 2^f is XOR-shared for free. Truncation by a bitwise-shared
  mask follows Catrina-Saxena (FC 2010); daBits are Rotaru-Wood (INDOCRYPT
  2019); the Z_2^k msb form is that of Escudero et al. (CRYPTO 2020), who build
  the bits from edaBits where we use OT-made daBits. Two-party semi2k
  truncates locally and needs none for ``trunc``; ``trunc_exact`` uses them at
  any party count. Z_2^64 only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.mpc.circuits import plane_words
from meshmpc.mpc.errors import MpcError, UnsupportedOperationError
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import Ring
from meshmpc.mpc.triples import Arrays, TripleProvider
from meshmpc.net import Context
from meshmpc.ot import OtPool, setup_pools
from meshmpc.ot.softspoken import DEFAULT_K

CHUNK_ELEMENTS = 1 << 14  # elements per OT batch: 2^20 OTs, bounded memory
SHIFTS = np.arange(64, dtype=np.uint64)


def _bits(values: np.ndarray) -> np.ndarray:
    """(n,) uint64 -> (n*64,) uint8 choice bits, bit k of element j at j*64 + k."""
    return ((values[:, None] >> SHIFTS) & np.uint64(1)).astype(np.uint8).reshape(-1)


def _ring64(ring: Ring) -> None:
    if ring.bits != 64:
        raise UnsupportedOperationError(
            f"semi2k with OT triples runs over Z_2^64 only (got {ring.name}); "
            "use the dealer for Z_2^128 tests or rep3")


class OtTripleProvider(TripleProvider):
    """Correlations from IKNP OT extension between every pair of parties."""

    name = "ot"

    def __init__(self, ctx: Context, ot_k: int = DEFAULT_K) -> None:
        """``ot_k``: SoftSpokenOT's k for the pools (128 / k bits per OT on the wire,
        about 2^k / k AES blocks per OT and side): 4 suits real links; 2 halves the
        extension's CPU for twice its bytes (in-memory or fast LAN runs)."""
        super().__init__(ctx)
        self.ot_k = ot_k
        self.pools: dict[str, OtPool] = {}
        self._prg = Prg(fresh_key())
        self._nonce = 0

    async def setup(self) -> None:
        if not self.pools:
            self.pools = await setup_pools(self.ctx.scope("ot-triples"), k=self.ot_k)

    def _random(self, count: int) -> np.ndarray:
        self._nonce += 1
        return self._prg.words(count, self._nonce)

    # --- arithmetic -------------------------------------------------------------------
    async def _gilboa(self, pool: OtPool, mine: np.ndarray, choices_of: np.ndarray,
                      width: int) -> np.ndarray:
        """Share of (my correlation x its bits) + (its correlation x my bits) with one peer.

        ``mine``: (r, width) words I send per element, ``choices_of``: (r,) words whose
        bits I choose with. Returns (r, width) shares, summed over the 64 bits.
        """
        rows = mine.shape[0]
        if width == 1:  # the C path: no 64x temporaries
            sent, got = await asyncio.gather(pool.sender.send_gilboa(mine.reshape(-1)),
                                             pool.receiver.receive_gilboa(choices_of))
            return np.add(sent, got, dtype=np.uint64).reshape(rows, 1)
        x = (mine[:, None, :] << SHIFTS[None, :, None]).reshape(rows * 64, width)
        sent, got = await asyncio.gather(
            pool.sender.send_correlated(x if width > 1 else x.reshape(-1)),
            pool.receiver.receive_correlated(_bits(choices_of), width),
        )
        sent = sent.reshape(rows, 64, width)
        got = got.reshape(rows, 64, width)
        return np.subtract(got.sum(axis=1, dtype=np.uint64), sent.sum(axis=1, dtype=np.uint64),
                           dtype=np.uint64)

    async def _cross(self, x: np.ndarray, y: np.ndarray, width: int = 1) -> np.ndarray:
        """Shares of sum over peers of (x_me (.) y_peer + x_peer (.) y_me), in chunks.

        x: (r, width) correlations, y: (r,) choice words; both this party's.
        """
        total = np.zeros_like(x)
        # the fused C path streams any batch through a ring of chunk buffers: one
        # unbroken pipeline per direction (no drain and refill every CHUNK_ELEMENTS)
        step = max(1, x.shape[0]) if width == 1 else CHUNK_ELEMENTS
        for start in range(0, x.shape[0], step):
            part = slice(start, start + step)
            shares = await asyncio.gather(*(
                self._gilboa(pool, x[part], y[part], width) for pool in self.pools.values()))
            for s in shares:
                total[part] += s
        return total

    async def arith_triples(self, ring: Ring, shape: Sequence[int]) -> Arrays:
        _ring64(ring)
        await self.setup()
        n = int(np.prod(shape, dtype=np.int64))
        a, b = self._random(n), self._random(n)
        cross = await self._cross(a.reshape(n, 1), b)
        c = a * b + cross.reshape(n)
        return a.reshape(shape), b.reshape(shape), c.reshape(shape)

    def _matrix_factors(self, sx: Sequence[int], sy: Sequence[int], reuse: Any
                        ) -> tuple[np.ndarray, np.ndarray]:
        """This party's random shares of A (m x k; an earlier A when ``reuse``) and B (k x p)."""
        (m, k), (_, p) = sx, sy
        if reuse is None:
            a = self._random(m * k).reshape(m, k)
        else:
            a = np.ascontiguousarray(reuse[0].T if reuse[1] else reuse[0])
        return a, self._random(k * p).reshape(k, p)

    async def matrix_triples(self, ring: Ring, sx: Sequence[int], sy: Sequence[int],
                             reuse: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """C = A @ B: choices are bits of A[s, t], correlations rows B[t, cols].

        ``reuse=(A, transposed)`` takes this party's share of an earlier A.
        """
        _ring64(ring)
        await self.setup()
        (m, k), (_, p) = sx, sy
        a, b = self._matrix_factors(sx, sy, reuse)
        c = np.matmul(a, b, dtype=np.uint64)
        for col in range(0, p, 2):
            cols = slice(col, min(col + 2, p))
            width = cols.stop - cols.start
            corr = np.broadcast_to(b[None, :, cols], (m, k, width)).reshape(m * k, width)
            shares = await self._cross(np.ascontiguousarray(corr), a.reshape(-1), width)
            c[:, cols] += shares.reshape(m, k, width).sum(axis=1, dtype=np.uint64)
        return a, b, c, (a if reuse is None else reuse[0])

    # --- boolean ------------------------------------------------------------------------
    async def _and_cross(self, pool: OtPool, a_bits: np.ndarray,
                         b_bits: np.ndarray) -> np.ndarray:
        """Shares of a_me & b_peer ^ a_peer & b_me (bit arrays) via random OT + correction."""
        n = a_bits.size

        async def as_sender() -> np.ndarray:
            m0, m1 = await pool.sender.rot(n)
            u, v = m0[:, 0] & 1, m1[:, 0] & 1
            tag = f"and-fix/{self._nonce}"
            await self.ctx.scope("ot-and").send(pool.peer, tag,
                                                np.packbits(u ^ v ^ a_bits, bitorder="little"))
            return u

        async def as_receiver() -> np.ndarray:
            _, m = await pool.receiver.rot(b_bits)
            fix = await self.ctx.scope("ot-and").recv(pool.peer, f"and-fix/{self._nonce}")
            d = np.unpackbits(np.asarray(fix, dtype=np.uint8), count=n, bitorder="little")
            return (m[:, 0] & 1) ^ (b_bits & d)

        u, w = await asyncio.gather(as_sender(), as_receiver())
        return u ^ w

    async def and_triples(self, shape: Sequence[int]) -> Arrays:
        await self.setup()
        count = int(np.prod(shape, dtype=np.int64))
        a, b = self._random(count), self._random(count)
        a_bits = np.unpackbits(a.view(np.uint8), bitorder="little")
        b_bits = np.unpackbits(b.view(np.uint8), bitorder="little")
        c_bits = a_bits & b_bits
        for s in await asyncio.gather(*(self._and_cross(p, a_bits, b_bits)
                                        for p in self.pools.values())):
            c_bits ^= s
        c = np.packbits(c_bits, bitorder="little").view(np.uint64)
        return a.reshape(shape), b.reshape(shape), c.reshape(shape)

    async def dabits(self, ring: Ring, n: int) -> Arrays:
        """Random bits r_i per party; arithmetic XOR folded one party at a time."""
        _ring64(ring)
        await self.setup()
        return await self._random_dabits(n)

    async def _random_dabits(self, n: int) -> Arrays:
        """(plane, arith): n random bits as XOR-shared plane words and Z_2^64 shares.

        Each party's own random bits are its XOR share; the arithmetic sharing of
        their XOR is folded in N - 1 steps b <- b + r_i - 2 b r_i (one correlated
        OT per bit and peer towards party i). Bit j sits in word j // 64, bit j % 64.
        """
        words = plane_words(n)
        plane = self._random(words)
        if n % 64:
            plane[-1] &= np.uint64((1 << (n % 64)) - 1)
        mine = np.unpackbits(plane.view(np.uint8), count=n, bitorder="little").astype(np.uint64)
        acc = mine.copy() if self.ctx.index == 0 else np.zeros(n, np.uint64)
        for i, party in enumerate(self.ctx.parties[1:], start=1):
            prod = await self._times_bits_of(party, acc, mine if self.ctx.index == i else None)
            if self.ctx.index == i:
                acc = acc + mine
            acc = acc - prod - prod
        return plane, acc

    async def _times_bits_of(self, party: str, acc: np.ndarray,
                             bits: np.ndarray | None) -> np.ndarray:
        """Shares of (sum of acc shares) * bits, where ``party`` holds the bits."""
        if self.ctx.party != party:
            sent = await self.pools[party].sender.send_correlated(acc)
            return np.subtract(np.uint64(0), sent, dtype=np.uint64)
        assert bits is not None
        choices = bits.astype(np.uint8)
        got = await asyncio.gather(*(pool.receiver.receive_correlated(choices)
                                     for pool in self.pools.values()))
        out = acc * bits
        for g in got:
            out = out + g
        return out

    async def trunc_pairs(self, ring: Ring, shape: Sequence[int], bits: int,
                          low_bits: bool = False) -> Arrays:
        """Exact pairs (r, (r mod 2^63) >> bits, msb(r)) from 64 daBits per element.

        r is uniform in Z_2^64 and every one of its bits is a daBit, so the pair is
        exact (no statistical slack, no failure event): r = sum 2^k r_k, the shifted
        low part and the msb are the matching sums of the arithmetic bit shares,
        and the XOR shares of r mod 2^bits (``low_bits``) are the daBits' XOR
        shares, which are already one uint64 word per element. Cost per element:
        64 daBits, i.e. 64 (N - 1)^2 correlated OTs in N - 1 rounds.
        """
        _ring64(ring)
        if not 0 < bits < 63:
            raise MpcError(f"semi2k truncation by {bits} bits: need 0 < bits < 63")
        await self.setup()
        n = int(np.prod(shape, dtype=np.int64))
        r, low, top = (np.empty(n, np.uint64) for _ in range(3))
        under = np.empty(n, np.uint64)
        for start in range(0, n, CHUNK_ELEMENTS):
            part = slice(start, min(n, start + CHUNK_ELEMENTS))
            plane, arith = await self._random_dabits((part.stop - part.start) * 64)
            bit_shares = arith.reshape(-1, 64)
            r[part] = np.bitwise_left_shift(bit_shares, SHIFTS).sum(axis=1, dtype=np.uint64)
            low[part] = np.bitwise_left_shift(bit_shares[:, bits:63], SHIFTS[:63 - bits]).sum(
                axis=1, dtype=np.uint64)
            top[part] = bit_shares[:, 63]
            under[part] = plane & np.uint64((1 << bits) - 1)
        out = tuple(a.reshape(shape) for a in (r, low, top))
        return (*out, under.reshape(shape)) if low_bits else out
