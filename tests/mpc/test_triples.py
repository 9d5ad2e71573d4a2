"""Correlated randomness: the relations hold once shares are combined, for the
dealer and the OT-based provider, on 2 and 3 parties."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from meshmpc.mpc.circuits import unslice_plane
from meshmpc.mpc.errors import UnsupportedOperationError
from meshmpc.mpc.factory import make_provider
from meshmpc.mpc.ring import RING64, RING128
from meshmpc.net import run_parties
from meshmpc.net.context import Context


async def correlations(ctx: Context, source: str) -> dict[str, Any]:
    provider = make_provider(ctx, source)
    await provider.setup()
    return {
        "arith": await provider.arith_triples(RING64, (3, 33)),
        "matrix": await provider.matrix_triples(RING64, (5, 3), (3, 4)),
        "and": await provider.and_triples((2, 9)),
        "dabits": await provider.dabits(RING64, 130),
    }


def combine(results: dict[str, Any], key: str, index: int, xor: bool = False) -> np.ndarray:
    parts = [r[key][index] for r in results.values()]
    return functools.reduce(np.bitwise_xor if xor else np.add, parts)


@pytest.mark.parametrize("source", ["dealer", "ot"])
@pytest.mark.parametrize("count", [2, 3])
def test_correlations_hold(source: str, count: int) -> None:
    out = run_parties(["p0", "p1", "p2"][:count], correlations, source)
    a, b, c = (combine(out, "arith", i) for i in range(3))
    assert np.array_equal(a * b, c) and a.shape == (3, 33)
    a, b, c = (combine(out, "matrix", i) for i in range(3))
    assert np.array_equal(np.matmul(a, b, dtype=np.uint64), c) and c.shape == (5, 4)
    a, b, c = (combine(out, "and", i, xor=True) for i in range(3))
    assert np.array_equal(a & b, c)
    plane, arith = combine(out, "dabits", 0, xor=True), combine(out, "dabits", 1)
    bits = unslice_plane(plane, 130)
    assert np.array_equal(bits, arith) and 20 < bits.sum() < 110
    # the shares themselves are not the values: each party's a differs from the total
    first = next(iter(out.values()))
    assert not np.array_equal(first["arith"][0], combine(out, "arith", 0))


def test_ot_provider_refuses_what_it_cannot_make() -> None:
    async def job(ctx: Context, what: str) -> Any:
        provider = make_provider(ctx, "ot")
        await provider.setup()
        if what == "ring128":
            return await provider.arith_triples(RING128, (4,))
        return await provider.trunc_pairs(RING128, (4,), 16)

    for what in ("ring128", "trunc128"):
        with pytest.raises(UnsupportedOperationError):
            run_parties(["p0", "p1"], job, what)


def test_gilboa_kernels_multiply_with_the_receivers_bits() -> None:
    from meshmpc import _core

    rng = np.random.default_rng(8)
    rows = 37
    a = rng.integers(0, 2**63, rows, dtype=np.uint64) * np.uint64(3)
    b = rng.integers(0, 2**63, rows, dtype=np.uint64) * np.uint64(5)
    pads = rng.integers(0, 2**63, (128 * rows, 2), dtype=np.uint64)
    corr, sent = np.empty(64 * rows, np.uint64), np.empty(rows, np.uint64)
    _core.gilboa_send(pads, a, corr, sent)
    bits = np.unpackbits(b.view(np.uint8), bitorder="little").astype(bool)
    chosen = np.ascontiguousarray(np.where(bits[:, None], pads[64 * rows:], pads[:64 * rows]))
    got = np.empty(rows, np.uint64)
    _core.gilboa_recv(chosen, b, corr, got)
    assert np.array_equal(sent + got, a * b)
    with pytest.raises(ValueError, match="pads"):
        _core.gilboa_recv(chosen[:-1], b, corr, got)
