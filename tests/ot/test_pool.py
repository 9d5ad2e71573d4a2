"""Correlation pool: both directions from one set-up, many draws, KKRT from the pool."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot.pool import setup_pools


async def pool_job(ctx: Context, engine: str) -> object:
    pools = await setup_pools(ctx, engine=engine)
    results = {}
    for peer, pool in pools.items():
        draws = []
        if ctx.index < ctx.parties.index(peer):  # lower index sends first
            draws.append(("q", pool.sender.delta, await pool.sender.cot(300)))
            draws.append(("t", await pool.receiver.random_cot(77)))
            oprf = await pool.kkrt_sender()
            key = await oprf.extend(50)
            draws.append(("key", key))
        else:
            draws.append(("t", await pool.receiver.random_cot(300)))
            draws.append(("q", pool.sender.delta, await pool.sender.cot(77)))
            oprf_receiver = await pool.kkrt_receiver()
            x = np.arange(800, dtype=np.uint8).reshape(50, 16)
            draws.append(("values", x, await oprf_receiver.encode(x)))
        results[peer] = draws
    return results


@pytest.mark.parametrize("engine", ["iknp", "softspoken"])
def test_three_party_pools_serve_both_directions(engine: str) -> None:
    out = run_parties(["a", "b", "c"], pool_job, engine)
    for low, high in [("a", "b"), ("a", "c"), ("b", "c")]:
        lo, hi = out[low][high], out[high][low]
        _, delta, q = lo[0]
        _, (choices, t) = hi[0]
        assert np.array_equal(t, q ^ (choices[:, None] * delta))
        _, (choices, t) = lo[1]
        _, delta, q = hi[1]
        assert np.array_equal(t, q ^ (choices[:, None] * delta))
        key = lo[2][1]
        _, x, values = hi[2]
        assert np.array_equal(key.evaluate(np.arange(50), x), values)
    deltas = {out[p][q][0][1].tobytes() for p, q in [("a", "b"), ("a", "c"), ("b", "c")]}
    assert len(deltas) == 3


def test_unknown_engine_raises() -> None:
    from meshmpc.ot.errors import OtInputError

    async def job(ctx: Context) -> object:
        return await setup_pools(ctx, engine="silent")

    with pytest.raises(OtInputError, match="unknown OT engine"):
        run_parties(["a", "b"], job)
