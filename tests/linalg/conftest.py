"""Run a SecretTensor program under semi2k (dealer, 2 parties) and rep3, and on the
plaintext backend, so each test compares the two."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from meshmpc.linalg import PlainBackend, SecureBackend
from meshmpc.mpc.factory import make_suite
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.net.eventloop import run

SUITES = {"semi2k": ("dealer", ["bank", "gov"]), "rep3": ("none", ["bank", "gov", "telco"])}


async def _job(ctx: Context, suite: str, program: Callable[..., Awaitable[Any]],
               inputs: dict[str, np.ndarray]) -> Any:
    backend = SecureBackend(await make_suite(ctx, suite, triples=SUITES[suite][0]))
    owner = ctx.parties[-1]
    tensors = {name: await backend.input(owner, v if ctx.party == owner else None, np.shape(v))
               for name, v in inputs.items()}
    out = await program(backend, **tensors)
    return await out.reveal()


def both(suite: str, program: Callable[..., Awaitable[Any]],
         **inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(secure result revealed at the first party, plaintext result)."""
    secure = run_parties(SUITES[suite][1], _job, suite, program, inputs)[SUITES[suite][1][0]]

    async def plain() -> Any:
        backend = PlainBackend()
        tensors = {k: await backend.input("bank", v) for k, v in inputs.items()}
        return await (await program(backend, **tensors)).reveal()

    return secure, run(plain())


@pytest.fixture(params=list(SUITES))
def suite(request: pytest.FixtureRequest) -> str:
    return str(request.param)
