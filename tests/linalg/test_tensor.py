"""SecretTensor's numpy-like API against the plaintext backend: broadcasting,
indexing, concatenation, reductions, @ with 1-D and 2-D operands, public operands."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from meshmpc.linalg import SecureBackend, concatenate
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.factory import make_suite
from meshmpc.net import run_parties
from meshmpc.net.context import Context

from .conftest import both

RNG = np.random.default_rng(2024)
A = RNG.uniform(-5, 5, size=(3, 4))
B = RNG.uniform(-5, 5, size=(4,))
C = RNG.uniform(-5, 5, size=(4, 2))
TOL = 1e-3


async def elementwise(backend: Any, a: Any, b: Any, c: Any) -> Any:
    broadcast_sum = a + b - 1.5  # (3,4) + (4,) - scalar
    scaled = await (a * b)  # broadcasting product
    by_public = await (a * np.array([2.0, -1.0, 0.5, 3.0]))
    by_int = await (a * 3)
    neg = -a + 2
    rsub = 1.0 - a
    halves = await (a / 4.0)
    parts = [broadcast_sum, scaled, by_public, by_int, neg, rsub, halves]
    return concatenate([p.flatten() for p in parts])


def test_elementwise_and_broadcasting(suite: str) -> None:
    secure, plain = both(suite, elementwise, a=A, b=B, c=C)
    assert secure.shape == plain.shape
    assert np.allclose(secure, plain, atol=TOL)


async def layout(backend: Any, a: Any, b: Any, c: Any) -> Any:
    parts = [
        a[1], a[:, 2], a[1:, ::2].flatten(), a.T.flatten(), a.reshape(2, 6)[1],
        a.sum(), a.sum(axis=0), a.sum(axis=1), a.sum(axis=1, keepdims=True).flatten(),
        await a.mean(axis=0), concatenate([a, a[:1]], axis=0).flatten(),
        concatenate([a, a[:, :1]], axis=1).flatten(),
        b.broadcast_to((2, 4)).flatten(),
    ]
    return concatenate([p.reshape(-1) for p in parts])


def test_indexing_reductions_concatenation(suite: str) -> None:
    secure, plain = both(suite, layout, a=A, b=B, c=C)
    assert np.allclose(secure, plain, atol=TOL)


async def products(backend: Any, a: Any, b: Any, c: Any) -> Any:
    parts = [
        await (a @ c),  # (3,4) @ (4,2)
        await (a @ b),  # (3,4) @ (4,)
        await (b @ c),  # (4,) @ (4,2)
        await (b @ b),  # (4,) @ (4,) -> scalar
        await (a @ C),  # secret @ public
        await (A.T @ a),  # public @ secret (rmatmul)
        await a.dot(b),
    ]
    return concatenate([p.reshape(-1) for p in parts])


def test_matrix_products(suite: str) -> None:
    secure, plain = both(suite, products, a=A, b=B, c=C)
    assert np.allclose(secure, plain, atol=5e-3)


async def reveal_to_one(ctx: Context) -> Any:
    backend = SecureBackend(await make_suite(ctx, "semi2k", triples="dealer"))
    owner = ctx.parties[0]
    t = await backend.input(owner, A if ctx.party == owner else None, A.shape)
    return await t.reveal(to=ctx.parties[1]), t.shape, t.dtype


def test_input_reveal_round_trip_to_one_party() -> None:
    out = run_parties(["bank", "gov", "telco"], reveal_to_one)
    assert out["bank"][0] is None and out["telco"][0] is None
    assert np.allclose(out["gov"][0], A, atol=2**-16)
    assert out["bank"][1] == (3, 4) and out["bank"][2] == "fxp64(f=16)"


async def bad_shapes(ctx: Context, case: str) -> Any:
    backend = SecureBackend(await make_suite(ctx, "semi2k", triples="dealer"))
    owner = ctx.parties[0]
    if case == "no-shape":
        return await backend.input(owner, A if ctx.party == owner else None)
    a = await backend.input(owner, A if ctx.party == owner else None, A.shape)
    if case == "matmul":
        return await (a @ a)
    return a + a.T[:2]


@pytest.mark.parametrize("case,error", [
    ("no-shape", "party gov: pass the shape of bank's input"),
    ("matmul", r"\(m,k\) @ \(k,p\)"),
    ("broadcast", "broadcast"),
])
def test_bad_shapes_raise(case: str, error: str) -> None:
    with pytest.raises((MpcError, ValueError), match=error):
        run_parties(["bank", "gov"], bad_shapes, case)
