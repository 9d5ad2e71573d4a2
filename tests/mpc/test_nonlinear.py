"""Every operator on SecretTensor against the plaintext backend (same algorithm in
float) and against the exact function, under every suite configuration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from .conftest import run_plain, run_secure

X = np.concatenate([np.linspace(-12.0, 12.0, 97), [0.0, -1e-4, 1e-4, 10.0, -10.0]])
POSITIVE = np.concatenate([np.exp(np.linspace(np.log(0.01), np.log(5000.0), 60)), [1.0]])
M = np.random.default_rng(11).normal(scale=2.0, size=(4, 7))
M[0, :] = M[0, 0]  # ties: argmax must pick the first maximum

# name -> (program, input name, exact reference, tolerance vs exact, tolerance vs plain)
UNARY: dict[str, tuple[Any, np.ndarray, Any, float]] = {
    "relu": (lambda t: t.relu(), X, lambda v: np.maximum(v, 0), 2e-5),
    "sign": (lambda t: t.sign(), X, lambda v: np.where(v < 0, -1.0, 1.0), 0.0),
    "abs": (lambda t: t.abs(), X, np.abs, 2e-5),
    "sigmoid": (lambda t: t.sigmoid(), X, lambda v: 1 / (1 + np.exp(-v)), 5e-4),
    "sigmoid_exp": (lambda t: t.sigmoid("exp"), X, lambda v: 1 / (1 + np.exp(-v)), 2.5e-3),
    "clip": (lambda t: t.clip(-2.0, 3.0), X, lambda v: np.clip(v, -2.0, 3.0), 2e-5),
    "sqrt": (lambda t: t.sqrt(), POSITIVE, np.sqrt, None),
    "rsqrt": (lambda t: t.rsqrt(), POSITIVE, lambda v: v**-0.5, None),
    "log": (lambda t: t.log(), POSITIVE, np.log, 2e-3),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_operator(config: str, name: str) -> None:
    fn, data, reference, tol = UNARY[name]

    async def program(backend: Any, x: Any) -> Any:
        return await fn(x)

    secure = run_secure(config, program, x=data)
    plain = run_plain(program, x=data)
    exact = reference(data)
    if tol is None:  # relative error where the result is representable
        rel = np.abs(secure - exact) / np.abs(exact)
        assert np.max(rel) < 4e-3, name
    else:
        assert np.max(np.abs(secure - exact)) <= tol + 2e-5, name
    assert np.max(np.abs(secure - plain)) <= max(1e-3, 4e-3 * np.max(np.abs(exact)))


def test_exp_and_reciprocal(config: str) -> None:
    xs = np.linspace(-8.0, 6.0, 57)
    ps = np.concatenate([-POSITIVE[::7], POSITIVE[::3]])

    async def program(backend: Any, x: Any, p: Any) -> Any:
        e = await x.exp()
        r = await p.reciprocal()
        return e.concat([r])

    out = run_secure(config, program, x=xs, p=ps)
    e, r = out[: xs.size], out[xs.size:]
    assert np.max(np.abs(e - np.exp(xs)) / np.maximum(np.exp(xs), 1.0)) < 1e-2
    assert np.max(np.abs(r - 1 / ps) / np.maximum(np.abs(1 / ps), 2.0**-8)) < 2e-2


def test_comparisons_select_and_division(config: str) -> None:
    a = np.array([0.0, -3.5, 2.0, 7.25, -0.001, 1e4, -1e4, 5.0])
    b = np.array([0.0, 1.0, 2.0, -7.0, 0.001, 1e4 - 1, -1e4 + 1, 2.5])

    async def program(backend: Any, x: Any, y: Any) -> Any:
        from meshmpc.linalg import select

        lt, gt = await (x < y), await (x > y)
        le, ge = await (x <= y), await (x >= y)
        chosen = await select(lt, x, y)  # min
        quotient = await (x[-1:] / y[-1:])
        return lt.concat([gt, le, ge, chosen, quotient])

    out = run_secure(config, program, x=a, y=b).reshape(-1)
    n = a.size
    assert out[:n].tolist() == (a < b).astype(float).tolist()
    assert out[n: 2 * n].tolist() == (a > b).astype(float).tolist()
    assert out[2 * n: 3 * n].tolist() == (a <= b).astype(float).tolist()
    assert out[3 * n: 4 * n].tolist() == (a >= b).astype(float).tolist()
    assert np.allclose(out[4 * n: 5 * n], np.minimum(a, b), atol=2e-5)
    assert abs(out[-1] - 2.0) < 1e-3


def test_max_argmax_softmax(config: str) -> None:
    async def program(backend: Any, m: Any) -> Any:
        mx = await m.max(axis=1)
        am = await m.argmax(axis=1)
        am0 = await m.argmax(axis=0)
        sm = await m.softmax(axis=1)
        return mx.concat([am, am0, sm.flatten()])

    out = run_secure(config, program, m=M)
    rows, cols = M.shape
    assert np.allclose(out[:rows], M.max(axis=1), atol=2e-5)
    assert out[rows: 2 * rows].tolist() == M.argmax(axis=1).astype(float).tolist()
    assert out[2 * rows: 2 * rows + cols].tolist() == M.argmax(axis=0).astype(float).tolist()
    ref = np.exp(M - M.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.max(np.abs(out[2 * rows + cols:].reshape(M.shape) - ref)) < 3e-3


def test_comparison_of_empty_arrays(config: str) -> None:
    """An empty comparison returns an empty result without a round (it used to raise)."""
    async def program(backend: Any, x: Any, y: Any) -> Any:
        return await (x[:0] < y[:0])

    out = run_secure(config, program, x=np.array([1.0, 2.0]), y=np.array([2.0, 1.0]))
    assert np.shape(out) == (0,)
