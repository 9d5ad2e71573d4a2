"""Concurrent suite operations never mix messages (hardening defect 9).

Two operations of every kind run with ``asyncio.gather`` from a fresh suite
(so the first ones also race through the provider's set-up); each result must
equal its plaintext value. Before the fix, ``tag()`` read the nonce current
when it was called, so an operation that awaited its triples used a later
operation's tag and silently produced wrong values.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from meshmpc.mpc.factory import make_suite
from meshmpc.net import run_parties
from meshmpc.net.context import Context

from .conftest import PARTIES

CASES = {
    "semi2k-dealer-2": ("semi2k", "dealer", 2),
    "semi2k-dealer-3": ("semi2k", "dealer", 3),
    "semi2k-ot-2": ("semi2k", "ot", 2),
    "rep3": ("rep3", "none", 3),
}
X = np.array([3, -7, 11, 2**40, -(2**35), 0], dtype=np.int64)
Y = np.array([5, 9, -4, 3, 1 << 20, 17], dtype=np.int64)
W = np.array([-2, 4, 6, -8, 10, 12], dtype=np.int64)
V = np.array([1, 1 << 30, -3, 5, -(1 << 25), 2], dtype=np.int64)


def _u(a: np.ndarray) -> np.ndarray:
    return a.astype(np.uint64)


async def _job(ctx: Context, suite: str, triples: str) -> dict[str, np.ndarray]:
    s = await make_suite(ctx, suite, triples=triples, ring_bits=64)
    first, last = ctx.parties[0], ctx.parties[-1]
    mine = ctx.party
    x, y, w, v = await asyncio.gather(
        s.input(first, _u(X) if mine == first else None, X.shape),
        s.input(last, _u(Y) if mine == last else None, Y.shape),
        s.input(first, _u(W) if mine == first else None, W.shape),
        s.input(last, _u(V) if mine == last else None, V.shape))
    xy, wv = await asyncio.gather(s.mul(x, y), s.mul(w, v))
    m1, m2 = await asyncio.gather(
        s.matmul(s.lift(lambda a: a.reshape(2, 3), x), s.lift(lambda a: a.reshape(3, 2), y)),
        s.matmul(s.lift(lambda a: a.reshape(3, 2), w), s.lift(lambda a: a.reshape(2, 3), v)))
    t1, t2 = await asyncio.gather(s.trunc(x, 4), s.trunc(v, 4))
    b1, b2 = await asyncio.gather(s.msb(x), s.msb(y))
    if triples == "dealer":  # exact truncation needs truncation pairs (dealer only so far)
        e1, e2 = await asyncio.gather(s.trunc_exact(x, 4), s.trunc_exact(w, 3))
    else:
        e1, e2 = await asyncio.gather(s.trunc(x, 4), s.trunc(w, 3))
    out = await asyncio.gather(*(s.reveal(z) for z in (x, y, xy, wv, m1, m2, t1, t2, b1, b2,
                                                        e1, e2)))
    names = ["x", "y", "xy", "wv", "m1", "m2", "t1", "t2", "b1", "b2", "e1", "e2"]
    return {n: np.asarray(o).astype(np.int64) for n, o in zip(names, out, strict=True)}


@pytest.mark.parametrize("case", list(CASES))
def test_two_concurrent_operations_of_every_kind(case: str) -> None:
    suite, triples, count = CASES[case]
    res = run_parties(PARTIES[:count], _job, suite, triples)
    for party, got in res.items():
        assert np.array_equal(got["x"], X) and np.array_equal(got["y"], Y), party
        assert np.array_equal(got["xy"], X * Y) and np.array_equal(got["wv"], W * V), party
        assert np.array_equal(got["m1"], X.reshape(2, 3) @ Y.reshape(3, 2)), party
        assert np.array_equal(got["m2"], W.reshape(3, 2) @ V.reshape(2, 3)), party
        assert np.abs(got["t1"] - (X >> 4)).max() <= 1, party
        assert np.abs(got["t2"] - (V >> 4)).max() <= 1, party
        assert np.array_equal(got["b1"], (X < 0).astype(np.int64)), party
        assert np.array_equal(got["b2"], (Y < 0).astype(np.int64)), party
        exact = triples == "dealer"
        assert np.abs(got["e1"] - (X >> 4)).max() <= (0 if exact else 1), party
        assert np.abs(got["e2"] - (W >> 3)).max() <= (0 if exact else 1), party
