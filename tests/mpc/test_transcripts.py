"""Transcript hashes per protocol: with deterministic keys the bytes on the wire are
fixed, so any change to a protocol's messages shows up here (update the constant
only for an intended wire change, and say so in the commit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.ring import RING64
from meshmpc.net import run_parties
from meshmpc.net.context import Context

from .conftest import Transcript

EXPECTED = {
    "semi2k-mul": "17dda8425b939e4e1933a35fb43113ddda222dcb19ed61540f2b799bf182c394",
    "semi2k-matmul": "edba7c6a7882e00d2c79042fe468cbc4a2185c53c714edb12b20da274df73ee0",
    "semi2k-trunc3": "81164c26111ef9dfacd6bedceadcd7dd68e2f2a9ed6ed138f22b64c71367323d",
    "semi2k-less": "719873ae361904278a4d060bb021509fbe840c70be10377fa89db230b3f7815a",
    "rep3-mul": "4639049d535daad13149554aad55e91e682073f3e6b93307c95d52336d4c6530",
    "rep3-matmul": "b37bc9011010729a47d966044e0b0c33ecccf585bc18a8800fa97def855780bb",
    "rep3-trunc": "1fce0175011a8b6ac093e543a685298dac7dcf877a281fb6281aea4ab52c4a57",
    "rep3-less": "c04bba74d8baf1ba9f16551a4f3870c88d12e0b37f6cc8e8be4b6674f64f3e14",
}


async def protocol_job(ctx: Context, transcript: Transcript, suite: str, triples: str,
                       op: str) -> Any:
    transcript.attach(ctx)
    s = await make_suite(ctx, suite, triples=triples)
    xs = RING64.from_int(np.arange(-20, 20) * 4099)
    x = await s.input(ctx.parties[0], xs if ctx.index == 0 else None, (40,))
    y = await s.input(ctx.parties[-1], xs[::-1].copy() if ctx.index == len(ctx.parties) - 1
                      else None, (40,))
    if op == "mul":
        z = await s.mul(x, y)
    elif op == "trunc":
        z = await s.trunc(x, 8)
    elif op == "matmul":
        z = await s.matmul(s.lift(lambda a: a.reshape(4, 10), x),
                           s.lift(lambda a: a.reshape(10, 4), y))
    else:
        z = await s.msb(s.sub(x, y))
    return await s.reveal(z)


CASES = {
    "semi2k-mul": ("semi2k", "dealer", 2, "mul"),
    "semi2k-matmul": ("semi2k", "dealer", 2, "matmul"),
    "semi2k-trunc3": ("semi2k", "dealer", 3, "trunc"),
    "semi2k-less": ("semi2k", "dealer", 2, "less"),
    "rep3-mul": ("rep3", "none", 3, "mul"),
    "rep3-matmul": ("rep3", "none", 3, "matmul"),
    "rep3-trunc": ("rep3", "none", 3, "trunc"),
    "rep3-less": ("rep3", "none", 3, "less"),
}


def _digest(case: str) -> str:
    suite, triples, count, op = CASES[case]
    transcript = Transcript()
    run_parties(["p0", "p1", "p2"][:count], protocol_job, transcript, suite, triples, op)
    return transcript.hexdigest()


@pytest.mark.usefixtures("deterministic_keys")
@pytest.mark.parametrize("case", list(CASES))
def test_transcript_is_stable(case: str) -> None:
    assert _digest(case) == EXPECTED[case], f"wire format of {case} changed"
