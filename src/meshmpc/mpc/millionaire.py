"""Two-party sign bits by the millionaires' protocol of CrypTFlow2 on 4-bit digits.

Security: semi-honest, two parties, inheriting the OT extension's model
(protocols/ot.md) and the AND triples' source. Reveals nothing: every message
is one-time padded by random-OT pads or opened against a fresh AND triple.

The sign of x = a + b (Z_2^64 shares a of party 0, b of party 1) is
msb(a) ^ msb(b) ^ carry, with carry = [a' + b' >= 2^63] for a' = a mod 2^63,
b' = b mod 2^63, i.e. carry = [u < v] for u = 2^63 - 1 - a' (party 0) and
v = b' (party 1): a millionaires' comparison of two private 63-bit numbers.
Following Rathee et al., "CrypTFlow2: Practical 2-Party Secure Inference"
(CCS 2020), u and v are cut into 16 digits of 4 bits; for every digit one
1-out-of-16 OT gives XOR shares of [u_d < v_d] and [u_d == v_d] (party 0
sends, party 1 chooses with its digit); a tree of 4 layers then combines
adjacent digits, lt = lt_hi ^ (eq_hi & lt_lo) and eq = eq_hi & eq_lo (the two
cases lt_hi and eq_hi exclude each other, so XOR is OR), with AND triples from
the suite's provider. Each 1-of-16 OT is four random OTs (Naor-Pinkas style,
C kernel csrc/mill.c; the pads come trimmed to the bytes used from
csrc/cot_hash.c). Per element: 64 random OTs and 64 bytes for the
leaves, 29 AND gates for the tree (15 merges, the last needs lt only), 5
rounds; the bit-sliced adder circuit takes 188 AND gates. The two ANDs of a
merge share the operand eq_hi, so they run on one triple with a common mask
(2 random OTs and 3 opened bits per pair instead of 4 and 4): 30 random OTs
per element for the tree, 94 in all.
"""

from __future__ import annotations

import asyncio

import numpy as np

from meshmpc import _core
from meshmpc.mpc.circuits import plane_words
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.suite import Share, Suite
from meshmpc.net import Context
from meshmpc.ot import OtPool

DIGITS = 16
CHUNK = 1 << 14  # elements per OT batch: 2^20 random OTs, 16 MiB of COTs
LOW63 = np.uint64((1 << 63) - 1)


class MillionaireSign:
    """One party's end of the digit-wise comparison with ``pool.peer``."""

    def __init__(self, ctx: Context, pool: OtPool, sender: bool) -> None:
        self.ctx = ctx.scope("mill")
        self.pool = pool
        self.sender = sender
        self._prg = Prg(fresh_key())
        self._batch = 0

    async def leaves(self, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """XOR-shared planes (16 x ceil(n/64)) of [u_d < v_d] and [u_d == v_d] per digit."""
        share = np.ascontiguousarray(share, dtype=np.uint64).reshape(-1)
        n = share.size
        lt = np.empty((DIGITS, plane_words(n)), np.uint64)
        eq = np.empty_like(lt)
        for start in range(0, n, CHUNK):
            part = share[start: start + CHUNK]
            words = slice(start // 64, start // 64 + plane_words(part.size))
            self._batch += 1
            if self.sender:
                lt[:, words], eq[:, words] = await self._send(~part & LOW63)
            else:
                lt[:, words], eq[:, words] = await self._receive(part & LOW63)
        return lt, eq

    async def and_pairs(self, x: np.ndarray, y1: np.ndarray,
                        y2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """XOR shares of x & y1 and x & y2 (uint64 words of bits, one shape).

        Beaver AND with one triple (a, b1, b2, a & b1, a & b2) per bit pair: x is
        masked once for both gates (open x ^ a, y1 ^ b1, y2 ^ b2: 3 bits, not 4),
        and the pair triple costs two random OTs with two-bit messages, where two
        separate AND triples cost four.
        """
        a, b1, b2, c1, c2 = await self._pair_triples(x.size)
        a, b1, b2, c1, c2 = (t.reshape(x.shape) for t in (a, b1, b2, c1, c2))
        self._batch += 1
        mine = np.concatenate([(x ^ a).reshape(-1), (y1 ^ b1).reshape(-1),
                               (y2 ^ b2).reshape(-1)])
        await self.ctx.send(self.pool.peer, f"o/{self._batch}", mine)
        theirs = await self.ctx.recv(self.pool.peer, f"o/{self._batch}")
        if not isinstance(theirs, np.ndarray) or theirs.dtype != np.uint64 \
                or theirs.size != mine.size:
            raise MpcError(f"millionaires' comparison: party {self.pool.peer} opened "
                           f"{getattr(theirs, 'size', '?')} words, expected {mine.size}")
        d, e1, e2 = (part.reshape(x.shape) for part in np.split(mine ^ theirs, 3))
        z1 = c1 ^ (d & b1) ^ (e1 & a)
        z2 = c2 ^ (d & b2) ^ (e2 & a)
        if self.sender:  # the public d & e term, added once
            z1 ^= d & e1
            z2 ^= d & e2
        return z1, z2

    async def _pair_triples(self, words: int) -> tuple[np.ndarray, ...]:
        """(a, b1, b2, c1, c2) XOR shares with c_i = a & b_i, on ``words`` uint64 words.

        Cross terms a_me & (b1, b2)_peer from one random OT per bit in each
        direction: I choose with my bit of a, the peer corrects its pads to its
        two bits of (b1, b2) (the AND-triple construction of the OT provider,
        with two-bit messages).
        """
        self._batch += 1
        batch = self._batch
        a, b1, b2 = (self._prg.words(words, batch, stream) for stream in (2, 3, 4))
        a_bits, b1_bits, b2_bits = (np.unpackbits(w.view(np.uint8), bitorder="little")
                                    for w in (a, b1, b2))
        corr = b1_bits | (b2_bits << 1)

        async def as_sender() -> np.ndarray:
            m0, m1 = await self.pool.sender.rot_low(corr.size, 1)
            u, v = m0[:, 0] & 3, m1[:, 0] & 3
            await self.ctx.send(self.pool.peer, f"p/{batch}", u ^ v ^ corr)
            return u

        async def as_receiver() -> np.ndarray:
            _, m = await self.pool.receiver.rot_low(a_bits, 1)
            fix = await self.ctx.recv(self.pool.peer, f"p/{batch}")
            if not isinstance(fix, np.ndarray) or fix.dtype != np.uint8 \
                    or fix.size != a_bits.size:
                raise MpcError(f"millionaires' comparison: party {self.pool.peer} sent "
                               f"{getattr(fix, 'size', '?')} triple corrections, expected "
                               f"{a_bits.size} bytes")
            return (m[:, 0] & 3) ^ (a_bits * fix)

        sent, got = await asyncio.gather(as_sender(), as_receiver())
        cross = sent ^ got
        c1 = (a_bits & b1_bits) ^ (cross & 1)
        c2 = (a_bits & b2_bits) ^ (cross >> 1)
        packed = [np.packbits(c, bitorder="little").view(np.uint64) for c in (c1, c2)]
        return a, b1, b2, packed[0], packed[1]

    async def _send(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = u.size
        m0, m1 = await self.pool.sender.rot_low(4 * DIGITS * n, 4)
        lt_s = self._prg.words(DIGITS * plane_words(n), self._batch, 0).reshape(DIGITS, -1)
        eq_s = self._prg.words(DIGITS * plane_words(n), self._batch, 1).reshape(DIGITS, -1)
        if n % 64:  # the tail bits past n stay zero, like the receiver's
            lt_s[:, -1] &= np.uint64((1 << (n % 64)) - 1)
            eq_s[:, -1] &= np.uint64((1 << (n % 64)) - 1)
        masked = np.empty(DIGITS * n, np.uint32)
        await asyncio.to_thread(_core.mill_send, m0, m1, u, lt_s, eq_s, masked)
        await self.ctx.send(self.pool.peer, f"w/{self._batch}", masked)
        return lt_s, eq_s

    async def _receive(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = v.size
        choices = np.unpackbits(v.view(np.uint8), bitorder="little")  # bit 4d+i of v_e
        _, m = await self.pool.receiver.rot_low(choices, 4)
        masked = await self.ctx.recv(self.pool.peer, f"w/{self._batch}")
        if (not isinstance(masked, np.ndarray) or masked.dtype != np.uint32
                or masked.size != DIGITS * n):
            raise MpcError(f"millionaires' comparison: party {self.pool.peer} sent "
                           f"{getattr(masked, 'size', '?')} digit messages, expected "
                           f"{DIGITS * n} uint32 words")
        lt = np.empty((DIGITS, plane_words(n)), np.uint64)
        eq = np.empty_like(lt)
        await asyncio.to_thread(_core.mill_recv, m, v, np.ascontiguousarray(masked), lt, eq)
        return lt, eq


async def combine_digits(suite: Suite, sign: MillionaireSign, lt: np.ndarray,
                         eq: np.ndarray) -> Share:
    """[u < v] from per-digit (lt, eq) planes, low digit first: 4 AND layers.

    The two ANDs of a merge share their left operand eq_hi, so each pair runs on
    one triple with a common mask (:meth:`MillionaireSign.and_pairs`)."""
    count = DIGITS
    while count > 2:
        and_lt, and_eq = await sign.and_pairs(eq[1::2], lt[0::2], eq[0::2])
        lt = lt[1::2] ^ and_lt
        eq = and_eq
        count //= 2
    top = await suite.band(eq[1], lt[0])
    return suite.bxor(lt[1], top)


async def msb_plane(suite: Suite, sign: MillionaireSign, share: np.ndarray) -> Share:
    """XOR-shared plane of the sign bits of x = (my share) + (the peer's share)."""
    flat = np.ascontiguousarray(share, dtype=np.uint64).reshape(-1)
    lt, eq = await sign.leaves(flat)
    carry = await combine_digits(suite, sign, lt, eq)
    mine = np.empty(plane_words(flat.size), np.uint64)
    _core.ring_u64_to_plane(flat >> np.uint64(63), mine)
    return suite.lift(lambda c: c ^ mine, carry)
