"""Suite-level protocols on raw ring elements: input/reveal, exact ring arithmetic,
truncation, sign bits, on 2, 3 and 4 parties, both suites and both rings."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc.mpc.errors import MpcError, UnsupportedOperationError
from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.ring import RING64, RING128, Ring, ring_for
from meshmpc.net import run_parties
from meshmpc.net.context import Context

from .conftest import COMPARISON_OF, CONFIGS, PARTIES

EDGE64 = [0, 1, -1, 2**62 - 1, -(2**62), 12345, -98765]


async def ring_job(ctx: Context, suite: str, triples: str, bits: int, comparison: str,
                   xs: np.ndarray, ys: np.ndarray) -> dict[str, object]:
    s = await make_suite(ctx, suite, triples=triples, ring_bits=bits, comparison=comparison)
    ring = s.ring
    first, last = ctx.parties[0], ctx.parties[-1]
    x = await s.input(first, xs if ctx.party == first else None, ring.shape(xs))
    y = await s.input(last, ys if ctx.party == last else None, ring.shape(ys))
    out: dict[str, object] = {
        "x": await s.reveal(x),
        "x_to_last": await s.reveal(x, to=last),
        "sum": await s.reveal(s.sub(s.add(x, y), s.neg(y))),
        "mul": await s.reveal(await s.mul(x, y)),
        "pub": await s.reveal(s.add_public(s.mul_public(x, ys), ys)),
        "trunc": await s.reveal(await s.trunc(x, 12)),
    }
    mx = s.lift(lambda a: ring.reshape(a, (2, ring.shape(a)[0] // 2)), x)
    my = s.lift(lambda a: ring.reshape(a, (ring.shape(a)[0] // 2, 2)), y)
    out["matmul"] = await s.reveal(await s.matmul(mx, my))
    if bits == 64:
        out["msb"] = await s.reveal(await s.msb(x))
    return out


def _values(ring: Ring, n: int = 64) -> tuple[np.ndarray, np.ndarray, list[int]]:
    rng = np.random.default_rng(n)
    xi = [int(v) for v in rng.integers(-(2**40), 2**40, size=n)]
    xi[: len(EDGE64)] = EDGE64
    yi = [int(v) for v in rng.integers(-(2**30), 2**30, size=n)]
    return ring.from_int(np.array(xi, dtype=object)), ring.from_int(np.array(yi, dtype=object)), xi


@pytest.mark.parametrize("bits", [64, 128])
def test_ring_protocols_match_plain_ring(config: str, bits: int) -> None:
    suite, triples, count = CONFIGS[config]
    if triples == "ot" and bits == 128:
        pytest.skip("OT triples run over Z_2^64 only (tested to refuse in test_triples)")
    ring = ring_for(bits)
    xs, ys, xi = _values(ring)
    comparison = COMPARISON_OF.get(config, "circuit")
    out = run_parties(PARTIES[:count], ring_job, suite, triples, bits, comparison, xs, ys)
    res = out[PARTIES[0]]
    assert np.array_equal(res["x"], xs)
    assert res["x_to_last"] is None and np.array_equal(out[PARTIES[count - 1]]["x_to_last"], xs)
    assert np.array_equal(res["sum"], ring.add(xs, ring.add(ys, ys)))
    assert np.array_equal(res["mul"], ring.mul(xs, ys))
    assert np.array_equal(res["pub"], ring.add(ring.mul(xs, ys), ys))
    half = len(xi) // 2
    expected = ring.matmul(ring.reshape(xs, (2, half)), ring.reshape(ys, (half, 2)))
    assert np.array_equal(res["matmul"], expected)
    trunc = ring.decode(res["trunc"], 0)
    exact = np.array([v >> 12 for v in xi], dtype=np.float64)
    # EDGE64 includes |x| near 2^62: two-party local truncation may fail there
    small = np.abs(np.array(xi, dtype=np.float64)) < 2.0**45
    assert np.max(np.abs(trunc - exact)[small]) <= 1
    if bits == 64:
        assert res["msb"].tolist() == [int(v < 0) for v in xi]


async def exact_job(ctx: Context, xs: np.ndarray) -> object:
    s = await make_suite(ctx, "semi2k", triples="dealer")
    x = await s.input(ctx.parties[0], xs if ctx.index == 0 else None, xs.shape)
    return await s.reveal(await s.trunc_exact(x, 16))


@pytest.mark.parametrize("count", [2, 3])
def test_exact_truncation_is_floor(count: int) -> None:
    rng = np.random.default_rng(5)
    xi = rng.integers(-(2**61), 2**61, size=4000)
    xi[:6] = [0, -1, 1, 2**16, -(2**16), 2**61]
    out = run_parties(PARTIES[:count], exact_job, RING64.from_int(xi))[PARTIES[0]]
    assert np.array_equal(out.view(np.int64), xi >> 16)


def test_rep3_needs_three_parties() -> None:
    async def job(ctx: Context) -> object:
        return await make_suite(ctx, "rep3", triples="none")

    with pytest.raises(MpcError, match="exactly 3 parties"):
        run_parties(["a", "b"], job)


def test_unknown_suite_and_triples_raise() -> None:
    async def job(ctx: Context, suite: str, triples: str) -> object:
        return await make_suite(ctx, suite, triples=triples)

    with pytest.raises(MpcError, match="unknown suite"):
        run_parties(["a", "b"], job, "spdz", "ot")
    with pytest.raises(MpcError, match="dealer"):
        run_parties(["a", "b"], job, "semi2k", "trusted")


def test_input_errors_name_the_party() -> None:
    async def job(ctx: Context) -> object:
        s = await make_suite(ctx, "semi2k", triples="dealer")
        return await s.input("nobody", None, (3,))

    with pytest.raises(MpcError, match="unknown party 'nobody'"):
        run_parties(["a", "b"], job)


def test_comparison_on_128_bit_ring_is_refused() -> None:
    async def job(ctx: Context) -> object:
        s = await make_suite(ctx, "semi2k", triples="dealer", ring_bits=128)
        x = s.public(RING128.from_int(np.arange(3)))
        return await s.msb(x)

    with pytest.raises(UnsupportedOperationError, match="Z_2\\^64"):
        run_parties(["a", "b"], job)


async def reuse_job(ctx: Context, triples: str, xs: np.ndarray, ws: np.ndarray) -> object:
    s = await make_suite(ctx, "semi2k", triples=triples)
    x = await s.input(ctx.parties[0], xs if ctx.index == 0 else None, xs.shape)
    w = await s.input(ctx.parties[-1], ws if ctx.index == len(ctx.parties) - 1 else None,
                      ws.shape)
    first = ctx.traffic().bytes_sent
    xw = await s.matmul(x, w)
    cost_first = ctx.traffic().bytes_sent - first
    before = ctx.traffic().bytes_sent
    xt_r = await s.matmul(s.transpose(x), xw)  # reuses X - A, transposed
    cost_reuse = ctx.traffic().bytes_sent - before
    again = await s.matmul(x, s.add(w, w))  # reuses X - A as is
    return ([await s.reveal(v) for v in (xw, xt_r, again)], cost_first, cost_reuse)


@pytest.mark.parametrize("triples,count", [("dealer", 2), ("dealer", 3), ("ot", 2)])
def test_opened_matrix_is_reused_for_transpose_and_repeats(triples: str, count: int) -> None:
    rng = np.random.default_rng(8)
    xs = RING64.from_int(rng.integers(-1000, 1000, size=(40, 6)))
    ws = RING64.from_int(rng.integers(-1000, 1000, size=(6, 1)))
    (xw, xt_r, again), cost_first, cost_reuse = run_parties(
        PARTIES[:count], reuse_job, triples, xs, ws)[PARTIES[0]]
    assert np.array_equal(xw, RING64.matmul(xs, ws))
    assert np.array_equal(xt_r, RING64.matmul(np.ascontiguousarray(xs.T), xw))
    assert np.array_equal(again, RING64.matmul(xs, ws + ws))
    if triples == "dealer":  # OT triple generation dominates the OT traffic
        assert cost_reuse < cost_first / 3  # only the 40 x 1 operand was opened
