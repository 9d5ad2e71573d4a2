"""Helpers for the secure computation tests: run a program under every suite."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from meshmpc.linalg import PlainBackend, SecureBackend
from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.fixedpoint import FixedPoint
from meshmpc.net import codec, run_parties
from meshmpc.net.context import Context

# (suite, triples, party count): every configuration the operator tests cover
CONFIGS = {
    "semi2k-2": ("semi2k", "dealer", 2),
    "semi2k-3": ("semi2k", "dealer", 3),
    "semi2k-4": ("semi2k", "dealer", 4),
    "rep3": ("rep3", "none", 3),
    "semi2k-ot": ("semi2k", "ot", 2),
    "semi2k-gc": ("semi2k", "dealer", 2),
    "semi2k-mill": ("semi2k", "ot", 2),
}
COMPARISON_OF = {"semi2k-gc": "gc", "semi2k-mill": "millionaire"}
PARTIES = ["bank", "gov", "fin", "telco"]

Program = Callable[..., Awaitable[Any]]


async def _secure_job(ctx: Context, suite: str, triples: str, ring_bits: int, exact: bool,
                      comparison: str, program: Program, inputs: dict[str, np.ndarray]) -> Any:
    engine = await make_suite(ctx, suite, triples=triples, ring_bits=ring_bits,
                              comparison=comparison)
    backend = SecureBackend(engine, FixedPoint(ring_bits=ring_bits, exact_trunc=exact))
    owner = ctx.parties[0]
    tensors = {}
    for name, value in inputs.items():
        mine = ctx.party == owner
        tensors[name] = await backend.input(owner, value if mine else None, np.shape(value))
    out = await program(backend, **tensors)
    return await out.reveal() if hasattr(out, "reveal") else out


def run_secure(config: str, program: Program, ring_bits: int = 64, exact: bool = False,
               **inputs: np.ndarray) -> Any:
    """Run ``program(backend, **tensors)`` under a configuration; party 0's revealed result."""
    suite, triples, count = CONFIGS[config]
    comparison = COMPARISON_OF.get(config, "circuit")
    results = run_parties(PARTIES[:count], _secure_job, suite, triples, ring_bits, exact,
                          comparison, program, inputs)
    return results[PARTIES[0]]


def run_plain(program: Program, **inputs: np.ndarray) -> Any:
    """The same program on the plaintext backend."""
    from meshmpc.net.eventloop import run

    async def job() -> Any:
        backend = PlainBackend()
        tensors = {k: await backend.input("bank", v) for k, v in inputs.items()}
        out = await program(backend, **tensors)
        return await out.reveal() if hasattr(out, "reveal") else out

    return run(job())


SLOW_CONFIGS = {"semi2k-mill"}  # the millionaire comparison is also tested in test_millionaire


@pytest.fixture(params=[pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CONFIGS else c
                        for c in CONFIGS])
def config(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Transcript:
    """SHA-256 over every message, grouped per (sender, receiver) link in send order."""

    def __init__(self) -> None:
        self.links: dict[str, Any] = {}

    def attach(self, ctx: Context) -> None:
        original = ctx.mesh.send
        party = ctx.party

        async def recording_send(peer: str, tag: str, obj: Any) -> None:
            h = self.links.setdefault(f"{party}>{peer}", hashlib.sha256())
            h.update(tag.encode() + b"\0" + codec.pack(obj))
            await original(peer, tag, obj)

        ctx.mesh.send = recording_send  # type: ignore[method-assign]

    def hexdigest(self) -> str:
        total = hashlib.sha256()
        for link in sorted(self.links):
            total.update(link.encode() + self.links[link].digest())
        return total.hexdigest()


@pytest.fixture
def deterministic_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the OS randomness behind protocol keys by a counter (transcript tests)."""
    import meshmpc.mpc.prg as prg_module

    counter = iter(range(1, 1 << 30))

    def fake_urandom(n: int) -> bytes:
        return hashlib.sha256(next(counter).to_bytes(8, "little")).digest()[:n]

    monkeypatch.setattr(prg_module.os, "urandom", fake_urandom)
