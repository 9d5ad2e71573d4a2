"""Silent VOLE: the correlation w = v + u * delta holds on every output (both
modes, several sizes), GGM puncturing, parameters, silent random OT, traffic."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc import _core
from meshmpc.crypto.prg import Prg
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot.vole import (
    MIN_NOISE,
    SilentVoleReceiver,
    SilentVoleSender,
    compress,
    ggm_leaves,
    ggm_leaves_reference,
    parameters,
    path_choices,
    punctured_leaves,
    punctured_leaves_reference,
)


def gf_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty_like(a)
    _core.gf128_mul_into(np.ascontiguousarray(a), np.ascontiguousarray(b), out)
    return out


def test_punctured_tree_matches_every_leaf_but_alpha() -> None:
    prg = Prg(b"\x07" * 16)
    depth, t = 5, 9
    roots = prg.blocks(t)
    leaves, sums = ggm_leaves(roots, depth)
    alpha = np.arange(t, dtype=np.int64) * 3 % (1 << depth)
    pick = path_choices(alpha, depth)
    chosen = sums[np.arange(t)[:, None], np.arange(depth)[None, :], pick]
    rebuilt = punctured_leaves(alpha, depth, chosen)
    mask = np.ones((t, 1 << depth), dtype=bool)
    mask[np.arange(t), alpha] = False
    assert np.array_equal(rebuilt[mask], leaves[mask])
    assert not rebuilt[~mask].any()
    ref_leaves, ref_sums = ggm_leaves_reference(roots, depth)
    assert np.array_equal(ref_leaves, leaves) and np.array_equal(ref_sums, sums)
    assert np.array_equal(punctured_leaves_reference(alpha, depth, chosen), rebuilt)


@pytest.mark.parametrize("n", [1, 5000, 1 << 20])
def test_parameters_cover_twice_n_with_enough_noise(n: int) -> None:
    t, depth = parameters(n)
    assert t >= MIN_NOISE and t * (1 << depth) >= 2 * max(n, 4096)
    assert t < 2 * MIN_NOISE


async def vole_job(ctx: Context, sizes: list[int], mode: str) -> object:
    if ctx.party == "s":
        sender = await SilentVoleSender.setup(ctx, "r")
        before = ctx.traffic().bytes_sent
        vs = [await sender.extend(n, mode) for n in sizes]
        return sender.delta, vs, ctx.traffic().bytes_sent - before
    receiver = await SilentVoleReceiver.setup(ctx, "s")
    before = ctx.traffic().bytes_sent
    outs = [await receiver.extend(n, mode) for n in sizes]
    return outs, ctx.traffic().bytes_sent - before


@pytest.mark.parametrize("mode", ["vole", "cot"])
def test_correlation_holds_on_every_output(mode: str) -> None:
    sizes = [1, 1000, 70000]
    out = run_parties(["s", "r"], vole_job, sizes, mode)
    delta, vs, sent_s = out["s"]
    outs, sent_r = out["r"]
    for n, v, (u, w) in zip(sizes, vs, outs, strict=True):
        assert v.shape == u.shape == w.shape == (n, 16)
        dd = np.tile(delta.reshape(1, 16), (n, 1))
        assert np.array_equal(w, v ^ gf_mul(u, dd))
        if mode == "cot":
            assert set(np.unique(u[:, 0])) <= {0, 1} and not u[:, 1:].any()
            assert 0.4 < u[:, 0].mean() < 0.6 if n > 500 else True
        else:
            assert len({row.tobytes() for row in u}) == n  # uniform field elements
    # silent: far below one block per output in both directions
    assert sent_s + sent_r < 0.5 * 16 * sum(sizes) + 3 * 600_000


async def rot_job(ctx: Context, n: int) -> object:
    if ctx.party == "s":
        return await (await SilentVoleSender.setup(ctx, "r")).rot(n)
    return await (await SilentVoleReceiver.setup(ctx, "s")).rot(n)


def test_silent_random_ot() -> None:
    out = run_parties(["s", "r"], rot_job, 5000)
    m0, m1 = out["s"]
    bits, m = out["r"]
    assert np.array_equal(m, np.where(bits[:, None] == 1, m1, m0))
    assert not np.array_equal(m0, m1)


def test_ea_compression_is_accumulate_then_sparse_picks() -> None:
    prg = Prg(b"\x09" * 16)
    big, n = 300, 100
    a, b = prg.blocks(big), prg.blocks(big)
    ca, cb = compress(a.copy(), n), compress(b.copy(), n)
    assert np.array_equal(compress(a ^ b, n), ca ^ cb)  # GF(2)-linear
    both = np.stack([a, b], axis=1).copy()
    assert np.array_equal(compress(both, n), np.stack([ca, cb], axis=1))
    unit = np.zeros((big, 16), dtype=np.uint8)
    unit[-1, 0] = 1  # accumulates into the last row only: picks of row big-1
    picked = compress(unit, n)[:, 0]
    assert set(np.unique(picked)) <= {0, 1} and 0 < picked.sum() < n
