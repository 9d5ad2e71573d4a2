"""Boolean circuits on bit-sliced XOR shares: the sign bit of a shared value.

A Z_2^64 share vector of n elements is bit-sliced into 64 *planes* of
ceil(n/64) words (plane j holds bit j of every element), so one AND of two
plane arrays evaluates 64 gates per word and the whole comparison of n
elements costs a handful of vectorised calls.

The sign of x = sum of the parties' operands is the top bit of their sum:
msb = a_63 ^ b_63 ^ carry_63(a, b). With more than two operands a carry-save
layer (one AND per bit) first reduces three operands to two. The carry into
bit 63 is the generate signal of the prefix (0..62), computed by a log-depth
reduction tree over (generate, propagate) pairs: 6 AND layers, 2 ANDs per
merged pair, 125 ANDs per element in total after the 63 generate ANDs
(Kogge-Stone / Brent-Kung style, see protocols/semi2k.md).
"""

from __future__ import annotations

import numpy as np

from meshmpc import _core
from meshmpc.mpc.suite import Share, Suite

PLANES = 64


def plane_words(n: int) -> int:
    """Words per plane for n elements."""
    return (n + 63) // 64


def bitslice(x: np.ndarray) -> np.ndarray:
    """Bit-slice a flat uint64 array into a (64, ceil(n/64)) plane array (C kernel)."""
    flat = np.ascontiguousarray(x.reshape(-1), dtype=np.uint64)
    planes = np.empty((PLANES, plane_words(flat.size)), dtype=np.uint64)
    _core.ring_bitslice64(flat, planes)
    return planes


def unslice_plane(plane: np.ndarray, n: int) -> np.ndarray:
    """The first n bits of one plane as uint64 0/1 words (C kernel)."""
    out = np.empty(n, dtype=np.uint64)
    _core.ring_plane_to_u64(np.ascontiguousarray(plane, dtype=np.uint64), out)
    return out


async def carry_save(suite: Suite, a: Share, b: Share, c: Share) -> tuple[Share, Share]:
    """Reduce three bit-sliced operands to two with the same sum (one AND layer)."""
    total = suite.bxor(suite.bxor(a, b), c)
    t = await suite.band(suite.bxor(a, c), suite.bxor(b, c))
    majority = suite.bxor(t, c)
    carry = suite.lift(
        lambda m: np.concatenate([np.zeros((1, m.shape[1]), np.uint64), m[:-1]]), majority
    )
    return total, carry


async def carry_into_top(suite: Suite, g: Share, p: Share) -> Share:
    """Generate signal of planes 0..62 (the carry into bit 63) by a reduction tree.

    ``g``/``p`` hold 64 planes; plane 63 must be the identity pair (g=0, p=1).
    """
    count = PLANES
    while count > 1:
        half = count // 2
        lo_g = suite.lift(lambda a: a[0::2], g)
        hi_g = suite.lift(lambda a: a[1::2], g)
        hi_p = suite.lift(lambda a: a[1::2], p)
        if half == 1:
            return suite.bxor(hi_g, await suite.band(hi_p, lo_g))
        lo_p = suite.lift(lambda a: a[0::2], p)
        both = await suite.band(
            suite.lift(lambda a: np.concatenate([a, a]), hi_p),
            suite.lift(lambda a, b: np.concatenate([a, b]), lo_g, lo_p),
        )
        g = suite.bxor(hi_g, suite.lift(lambda a, h=half: a[:h], both))
        p = suite.lift(lambda a, h=half: a[h:], both)
        count = half
    return g


async def msb_of_sum(suite: Suite, operands: list[Share]) -> Share:
    """XOR sharing (one plane) of the top bit of the sum of bit-sliced operands."""
    while len(operands) > 2:
        a, b = await carry_save(suite, *operands[:3])
        operands = [a, b, *operands[3:]]
    a, b = operands
    p = suite.bxor(a, b)
    top_p = suite.lift(lambda arr: arr[PLANES - 1], p)
    g_low = await suite.band(suite.lift(lambda x: x[:-1], a), suite.lift(lambda x: x[:-1], b))
    words = suite.components(top_p)[0].shape[0]
    g = suite.lift(lambda x: np.concatenate([x, np.zeros((1, words), np.uint64)]), g_low)
    ones = suite.bpublic(np.full((1, words), np.uint64(2**64 - 1)))
    p = suite.lift(lambda x, o: np.concatenate([x[:-1], o]), p, ones)
    carry = await carry_into_top(suite, g, p)
    return suite.bxor(top_p, suite.lift(lambda c: c.reshape(-1), carry))


async def carry_out_public(suite: Suite, public: np.ndarray, shared: Share) -> Share:
    """Carry out of bit 62 of public + shared (bit-sliced, plane 63 of both zero).

    With one operand public, the generate signals g = a & b and propagate
    signals p = a ^ b are local; only the reduction tree costs ANDs.
    """
    words = public.shape[1]
    g = suite.lift(lambda s: s & public, shared)
    p = suite.bxor(shared, suite.bpublic(public))
    g = suite.lift(lambda x: np.concatenate([x[:-1], np.zeros((1, words), np.uint64)]), g)
    ones = suite.bpublic(np.full((1, words), np.uint64(2**64 - 1)))
    p = suite.lift(lambda x, o: np.concatenate([x[:-1], o]), p, ones)
    carry = await carry_into_top(suite, g, p)
    return suite.lift(lambda c: c.reshape(-1), carry)


async def public_at_least(suite: Suite, c: np.ndarray, r: Share, bits: int) -> Share:
    """XOR-shared plane of [c >= r] for public c and XOR-shared r, both below 2^bits.

    c - r >= 0 exactly when c + ~r + 1 carries out of ``bits`` bits; both operands
    are shifted so that this carry lands in bit 63, and the +1 enters as a
    carry from a pair of ones one bit below.
    """
    shift = np.uint64(63 - bits)
    low_one = np.uint64(1) << np.uint64(62 - bits)
    mask = np.uint64((1 << bits) - 1)
    a = ((c.reshape(-1) & mask) << shift) | low_one
    flat_r = suite.lift(lambda x: x.reshape(-1), r)
    not_r = suite.bxor(flat_r, suite.bpublic(np.full(c.size, mask, np.uint64)))
    b = suite.lift(lambda x: ((x.reshape(-1) & mask) << shift), not_r)
    b = suite.bxor(b, suite.bpublic(np.full(c.size, low_one, np.uint64)))
    return await carry_out_public(suite, bitslice(a), suite.lift(bitslice, b))
