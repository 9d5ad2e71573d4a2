"""Jobs of the per-family hostile tests (OT, semi2k, rep3), with answers known in advance.

Every party derives the same test inputs from a public seed, so each one can
check what it got: a job returns ``{"rounds": r, "wrong": w}`` and a damaged
stream must end in an error, never in ``wrong > 0``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from meshmpc.mpc.factory import make_suite
from meshmpc.net.context import Context
from meshmpc.ot.iknp import CotReceiver, CotSender


def ot_inputs(round_: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two messages and the choice bits of one OT round (public: tests only)."""
    rng = np.random.default_rng(round_)
    m0, m1 = (rng.integers(0, 256, (n, 16), np.uint8) for _ in range(2))
    return m0, m1, rng.integers(0, 2, n).astype(np.uint8)


async def ot_rounds(ctx: Context, rounds: int, n: int, pause_s: float = 0.0) -> dict[str, Any]:
    """Base OTs then ``rounds`` batches of ``n`` chosen-message OTs (IKNP) from the first party
    (sender) to the second (receiver); the receiver counts wrong messages."""
    sender, receiver = ctx.parties[0], ctx.parties[1]
    wrong = 0
    if ctx.party == sender:
        cot = await CotSender.setup(ctx, receiver)
        for r in range(rounds):
            m0, m1, _ = ot_inputs(r, n)
            await cot.send(m0, m1)
            await asyncio.sleep(pause_s)
    else:
        rcv = await CotReceiver.setup(ctx, sender)
        for r in range(rounds):
            m0, m1, choices = ot_inputs(r, n)
            got = await rcv.receive(choices)
            wrong += int((got != np.where(choices[:, None] == 1, m1, m0)).any(axis=1).sum())
    await ctx.barrier("ot-done")
    return {"rounds": rounds, "wrong": wrong}


def mpc_inputs(round_: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + round_)
    return (rng.integers(0, 2**40, n, dtype=np.uint64), rng.integers(0, 2**20, n, dtype=np.uint64))


async def mpc_rounds(ctx: Context, suite: str, rounds: int, n: int, pause_s: float = 0.0
                     ) -> dict[str, Any]:
    """``rounds`` secure products x*y (x from the first party, y from the last) opened to
    every party, which compares with the product in the clear."""
    s = await make_suite(ctx, suite, triples="none" if suite == "rep3" else "ot")
    first, last = ctx.parties[0], ctx.parties[-1]
    wrong = 0
    for r in range(rounds):
        xs, ys = mpc_inputs(r, n)
        x = await s.input(first, xs if ctx.party == first else None, xs.shape)
        y = await s.input(last, ys if ctx.party == last else None, ys.shape)
        z = await s.reveal(await s.mul(x, y))
        wrong += int((np.asarray(z, np.uint64) != xs * ys).sum())
        await asyncio.sleep(pause_s)
    return {"rounds": rounds, "wrong": wrong}
