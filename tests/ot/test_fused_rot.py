"""Random OT and Gilboa products fused with the hash in C (``rot_low``,
``send_gilboa``): the same relations as the numpy path, the pads are the low bytes
of :meth:`rot`'s, and the reused extension buffer never leaks between batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from meshmpc.crypto.prg import Prg
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot.softspoken import SoftSpokenReceiver, SoftSpokenSender


async def _pair(ctx: Context, k: int) -> SoftSpokenSender | SoftSpokenReceiver:
    prg = Prg(bytes([7 + ctx.index]) * 16)
    if ctx.index == 0:
        return await SoftSpokenSender.setup(ctx, ctx.peers[0], prg, k=k)
    return await SoftSpokenReceiver.setup(ctx, ctx.peers[0], prg, k=k)


async def rot_job(ctx: Context, n: int, width: int) -> Any:
    end = await _pair(ctx, 4)
    if isinstance(end, SoftSpokenSender):
        first = await end.rot_low(n, width)
        second = await end.rot_low(n, width)  # from the reused buffer
        full = await end.rot(n)
        return first, second, full
    assert isinstance(end, SoftSpokenReceiver)
    choices = np.random.default_rng(n).integers(0, 2, n).astype(np.uint8)
    first = await end.rot_low(choices, width)
    second = await end.rot_low(choices, width)
    full = await end.rot(choices)
    return first, second, full


@pytest.mark.parametrize(("n", "width"), [(1, 1), (1000, 4), (70_000, 16)])
def test_rot_low_gives_the_chosen_pads_low_bytes(n: int, width: int) -> None:
    out = run_parties(["s", "r"], rot_job, n, width)
    (first0, first1), (second0, second1), (full0, full1) = out["s"]
    for (choices, got), m0, m1 in ((out["r"][0], first0, first1),
                                   (out["r"][1], second0, second1)):
        want = np.where(choices[:, None] == 1, m1, m0)
        assert np.array_equal(got, want)
        if width > 1:  # one-byte pads collide by chance 1 in 256
            other = np.where(choices[:, None] == 1, m0, m1)
            assert (got != other).any(axis=1).mean() > 0.99
    assert not np.array_equal(first0, second0)  # fresh OTs, not the buffer's old rows
    choices, full = out["r"][2]
    assert np.array_equal(full, np.where(choices[:, None] == 1, full1, full0))
    assert full0.shape == (n, 16)


async def gilboa_job(ctx: Context, k: int, a: np.ndarray, b: np.ndarray) -> Any:
    end = await _pair(ctx, k)
    shares = []
    for _ in range(2):
        if isinstance(end, SoftSpokenSender):
            shares.append(await end.send_gilboa(a))
        else:
            assert isinstance(end, SoftSpokenReceiver)
            shares.append(await end.receive_gilboa(b))
    return shares


@pytest.mark.parametrize(("k", "rows"), [(2, 3000), (4, 3000), (4, 2999), (4, 4097)])
def test_gilboa_over_the_wire_multiplies(k: int, rows: int) -> None:
    """Even row counts take the packed-choices path, odd ones the per-bit one; 4097
    rows span three extension chunks (2^17 OTs each), so the pipelining is exercised."""
    rng = np.random.default_rng(k + rows)
    a = rng.integers(0, 2**64, rows, dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 2**64, rows, dtype=np.uint64, endpoint=False)
    out = run_parties(["s", "r"], gilboa_job, k, a, b)
    for sent, got in zip(out["s"], out["r"], strict=True):
        assert np.array_equal(sent + got, a * b)
    assert not np.array_equal(out["s"][0], out["s"][1])
