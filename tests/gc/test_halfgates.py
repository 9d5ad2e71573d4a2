"""Half-gates garbling: the evaluated sign circuit decodes to msb(a + b), labels and
tables look random, a corrupted table breaks the output, and the two-party
protocol over OT yields XOR shares of the sign."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc.gc import GcSign
from meshmpc.gc.halfgates import BITS, SignEvaluator, SignGarbler, colour_bit, colours
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot import OtPool

RNG = np.random.default_rng(99)
EDGES = np.array([0, 1, -1, 2**62, -(2**62), 2**63 - 1, -(2**63)], dtype=np.int64)


def bits_of(words: np.ndarray) -> np.ndarray:
    return ((words[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def garble_and_evaluate(a: np.ndarray, b: np.ndarray, corrupt: bool = False) -> np.ndarray:
    n = a.size
    delta = RNG.integers(0, 256, size=16, dtype=np.uint8)
    delta[3] |= 0x10
    a0 = RNG.integers(0, 256, size=(n, BITS, 16), dtype=np.uint8)
    b0 = RNG.integers(0, 256, size=(n, BITS, 16), dtype=np.uint8)
    garbler = SignGarbler(delta, tweak=1000)
    tables, out0 = garbler.garble(a0, b0)
    if corrupt:
        tables[5, :, 0] ^= 1
    active_a = a0 ^ (bits_of(a)[:, :, None] * delta)
    active_b = b0 ^ (bits_of(b)[:, :, None] * delta)
    out = SignEvaluator(garbler.colour, tweak=1000).evaluate(tables, active_a, active_b)
    return colours(out, garbler.colour) ^ colours(out0, garbler.colour)


def test_sign_circuit_decodes_to_msb_of_sum() -> None:
    a = np.concatenate([EDGES.view(np.uint64), RNG.integers(0, 2**64, 500, dtype=np.uint64)])
    b = np.concatenate([np.zeros(EDGES.size, np.uint64),
                        RNG.integers(0, 2**64, 500, dtype=np.uint64)])
    assert np.array_equal(garble_and_evaluate(a, b), ((a + b) >> np.uint64(63)).astype(np.uint8))


def test_corrupted_table_changes_outputs() -> None:
    a = RNG.integers(0, 2**64, 400, dtype=np.uint64)
    b = RNG.integers(0, 2**64, 400, dtype=np.uint64)
    wrong = garble_and_evaluate(a, b, corrupt=True) != ((a + b) >> np.uint64(63))
    assert wrong.any()


def test_colour_bit_is_a_set_bit_of_delta() -> None:
    delta = np.zeros(16, dtype=np.uint8)
    delta[2] = 0b100
    assert colour_bit(delta) == 18
    with pytest.raises(ValueError, match="zero"):
        colour_bit(np.zeros(16, dtype=np.uint8))


async def protocol(ctx: Context, shares: dict[str, np.ndarray]) -> np.ndarray:
    pool = await OtPool.setup(ctx.scope("test-gc"), ctx.peers[0])
    sign = GcSign(ctx, pool, garbler=ctx.index == 0)
    return await sign.msb_shares(shares[ctx.party])


def test_two_party_protocol_gives_xor_shares_of_the_sign() -> None:
    x = np.concatenate([EDGES, RNG.integers(-(2**62), 2**62, 3000)]).view(np.uint64)
    s0 = RNG.integers(0, 2**64, x.size, dtype=np.uint64)
    out = run_parties(["g", "e"], protocol, {"g": s0, "e": x - s0})
    assert np.array_equal(out["g"] ^ out["e"], (x >> np.uint64(63)).astype(np.uint8))
    assert 0.3 < out["g"].mean() < 0.7  # a share alone is not the answer


def test_colour_position_is_a_random_set_bit_not_the_lowest() -> None:
    from meshmpc.gc.halfgates import colour_bit

    delta = np.zeros(16, np.uint8)
    delta[0] = 0b1000  # bit 3
    delta[12] = 0b10000  # bit 100
    seen = {colour_bit(delta) for _ in range(200)}
    # the lowest set bit alone would tell the evaluator that bits 0..2 are zero
    assert seen == {3, 100}
