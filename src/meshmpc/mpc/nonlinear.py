"""Non-linear functions built from the tensor API (secret or plaintext backends).

Every function here uses only additions, products, public constants and the
sign test ``msb`` of the tensor API, so the same code runs on SecretTensor
(secure) and PlainTensor (float reference). Comparisons in a function are
batched into one ``msb`` call where they are independent.

Approximations and their documented error (measured in tests/mpc):

* sigmoid "poly8" (default): |x| via one comparison, a degree-8 Chebyshev fit
  of sigmoid on [0, 10] (Horner in u = |x|/10), saturation to 1 beyond 10 via a
  second comparison, reflection for x < 0. Error <= 5e-4 on [-10, 10] with
  f = 16, exact 0/1 saturation outside.
* sigmoid "exp": 1 / (1 + exp(-|x|)) with the exp below and a Newton reciprocal
  on [1, 2]; error about 1e-3 on [-10, 10].
* sigmoid "taylor1": 0.5 + x/4 (no comparison; error grows as |x|^3/48).
* exp: (1 + x/2^8 + (x/2^8)^2/2)^(2^8) by 8 squarings; relative error about
  2^(8-f) + |x|^3 / (6 * 4^8) (below 1% for |x| <= 10 with f = 16).
* reciprocal, rsqrt, sqrt, log: normalise x = m * 2^(j+1), m in [0.5, 1), by
  comparing x with every power of two 2^j in the representable range (one
  batched comparison), then Newton iterations (reciprocal, rsqrt) or a degree-8
  polynomial (log) on m; relative error about 2^-(f-2). Inputs must be
  positive (reciprocal also takes negatives), in [2^-(f/2), 2^24).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

Tensor = Any  # a TensorBase (meshmpc.linalg); kept duck-typed to respect layering

SIGMOID_POLY_RANGE = 10.0
SIGMOID_POLY_DEGREE = 8
EXP_SQUARINGS = 8
NORMALISE_MAX_EXPONENT = 24  # inputs of reciprocal/rsqrt/log below 2^24


@functools.cache
def _fit(fn_name: str, low: float, high: float, degree: int) -> tuple[float, ...]:
    """Monomial coefficients of a Chebyshev least-squares fit on [low, high].

    sigmoid: of sigmoid(10 u); log: of ln((u + 1) / 2), i.e. ln m with u = 2m - 1.
    """
    grid = np.linspace(low, high, 4001)
    if fn_name == "sigmoid":
        target = 1.0 / (1.0 + np.exp(-grid * SIGMOID_POLY_RANGE))
    else:
        target = np.log((grid + 1.0) / 2.0)
    cheb = np.polynomial.chebyshev.Chebyshev.fit(grid, target, degree)
    return tuple(float(c) for c in cheb.convert(kind=np.polynomial.Polynomial).coef)


async def horner(u: Tensor, coefficients: tuple[float, ...]) -> Tensor:
    """sum_k c_k u^k by Horner's rule: degree - 1 secret products."""
    acc = await (u * coefficients[-1])
    acc = acc + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        acc = (await (acc * u)) + c
    return acc


async def select(cond: Tensor, a: Any, b: Any) -> Tensor:
    """cond ? a : b for a 0/1 tensor cond (one product)."""
    return (await (cond * (a - b))) + b


async def sign(x: Tensor) -> Tensor:
    """-1 for negatives, +1 otherwise (zero counts as positive)."""
    negative = await x.msb()
    return (await (negative * -2)) + 1


async def absolute(x: Tensor) -> Tensor:
    negative = await x.msb()
    flipped = await (negative * x)
    return x - (flipped + flipped)


async def relu(x: Tensor) -> Tensor:
    return x - await ((await x.msb()) * x)


async def _msb_many(parts: list[Tensor]) -> list[Tensor]:
    """Sign bits of several same-backend tensors in one comparison call."""
    flat = [p.flatten() for p in parts]
    bits = await flat[0].concat(flat[1:]).msb()
    out, offset = [], 0
    for p in parts:
        out.append(bits[offset: offset + p.size].reshape(*p.shape))
        offset += p.size
    return out


async def clip(x: Tensor, low: float, high: float) -> Tensor:
    """min(max(x, low), high): both comparisons and both products batched."""
    below, above = await _msb_many([x - low, (-x) + high])
    n = x.size
    bits = below.flatten().concat([above.flatten()])
    deltas = ((-x) + low).flatten().concat([((-x) + high).flatten()])
    prods = await (bits * deltas)
    return x + prods[:n].reshape(*x.shape) + prods[n:].reshape(*x.shape)


def _last_axis(x: Tensor, axis: int) -> Tensor:
    axis %= x.ndim
    if axis == x.ndim - 1:
        return x
    order = [a for a in range(x.ndim) if a != axis] + [axis]
    return x.transpose(order)


async def maximum_reduce(x: Tensor, axis: int = -1) -> Tensor:
    """Maximum along an axis by a log-depth tournament of adjacent pairs."""
    cur = _last_axis(x, axis)
    while cur.shape[-1] > 1:
        half = cur.shape[-1] // 2
        a, b = cur[..., 0: 2 * half: 2], cur[..., 1: 2 * half: 2]
        rest = cur[..., 2 * half:]
        a_wins = await (a >= b)
        winners = await select(a_wins, a, b)
        cur = winners.concat([rest], axis=-1) if rest.shape[-1] else winners
    return cur.reshape(*cur.shape[:-1])


async def argmax(x: Tensor, axis: int = -1) -> Tensor:
    """Index of the (first) maximum along an axis, as an integer tensor."""
    cur = _last_axis(x, axis)
    idx: Any = np.broadcast_to(np.arange(cur.shape[-1], dtype=np.int64), cur.shape)
    while cur.shape[-1] > 1:
        half = cur.shape[-1] // 2
        a, b, rest = cur[..., 0: 2 * half: 2], cur[..., 1: 2 * half: 2], cur[..., 2 * half:]
        ia, ib = idx[..., 0: 2 * half: 2], idx[..., 1: 2 * half: 2]
        irest = idx[..., 2 * half:]
        a_wins = await (a >= b)  # adjacent blocks: ties go to the lower index
        both = await (a_wins.concat([a_wins], axis=-1) * _pair(a - b, ia - ib))
        winners, new_idx = both[..., :half] + b, both[..., half:] + ib
        cur = winners.concat([rest], axis=-1) if rest.shape[-1] else winners
        idx = _join(new_idx, irest)
    return idx.reshape(*idx.shape[:-1]) if hasattr(idx, "reshape") else idx


def _pair(values: Tensor, indices: Any) -> Tensor:
    if isinstance(indices, np.ndarray):
        indices = values.neg().add(values).add(indices)  # lift public indices to the backend
    return values.concat([indices], axis=-1)


def _join(idx: Tensor, rest: Any) -> Tensor:
    if rest.shape[-1] == 0:
        return idx
    if isinstance(rest, np.ndarray):
        rest = idx[..., : rest.shape[-1]].neg().add(idx[..., : rest.shape[-1]]).add(rest)
    return idx.concat([rest], axis=-1)


async def sigmoid(x: Tensor, method: str = "poly8") -> Tensor:
    """Logistic function; see the module docstring for the methods and their error."""
    if method == "taylor1":
        return (await (x * 0.25)) + 0.5
    if method == "exp":
        return await _sigmoid_exp(x)
    if method != "poly8":
        raise ValueError(f"unknown sigmoid method {method!r}; use poly8, exp or taylor1")
    negative = await x.msb()
    flip = await (negative * x)
    magnitude = x - (flip + flip)
    beyond = await (magnitude > SIGMOID_POLY_RANGE)
    u = await (magnitude * (1.0 / SIGMOID_POLY_RANGE))
    p = await horner(u, _fit("sigmoid", 0.0, 1.0, SIGMOID_POLY_DEGREE))
    p = await select(beyond, 1.0, p)
    return (await (negative * ((-p) + (-p) + 1))) + p


async def _sigmoid_exp(x: Tensor) -> Tensor:
    negative = await x.msb()
    flip = await (negative * x)
    magnitude = x - (flip + flip)
    d = (await exp(-magnitude)) + 1.0  # in (1, 2]
    s = await _newton_reciprocal(d, (await (d * -0.5)) + 1.457)
    return (await (negative * ((-s) + (-s) + 1))) + s


async def exp(x: Tensor) -> Tensor:
    """exp(x) = (1 + y + y^2/2)^(2^8) with y = x / 2^8."""
    y = await (x * (1.0 / 2**EXP_SQUARINGS))
    y2 = await (y * y)
    acc = (await (y2 * 0.5)) + y + 1.0
    for _ in range(EXP_SQUARINGS):
        acc = await (acc * acc)
    return acc


async def _newton_reciprocal(m: Tensor, y: Tensor, iterations: int = 3) -> Tensor:
    for _ in range(iterations):
        y = await (y * ((-(await (m * y))) + 2.0))
    return y


async def _normalise(x: Tensor) -> tuple[Tensor, list[int], Tensor]:
    """(m, exponents, one-hot h): x = m * 2^(j+1) with m in [0.5, 1) where h_j = 1."""
    f = x.scale if x.scale else 16
    exponents = list(range(-(f // 2), NORMALISE_MAX_EXPONENT))
    stacked = x.reshape(1, *x.shape).broadcast_to((len(exponents), *x.shape))
    below = await (stacked - _column([2.0**j for j in exponents], x.ndim)).msb()
    at_least = below.neg() + 1  # 1 where x >= 2^j
    onehot = (at_least[:-1] - at_least[1:]).concat([at_least[-1:]], axis=0)
    m = await _times_power(x, onehot, [-(j + 1) for j in exponents])
    return m, exponents, onehot


def _column(values: list[float], ndim: int) -> np.ndarray:
    return np.array(values).reshape(-1, *([1] * ndim))


async def _times_power(y: Tensor, onehot: Tensor, powers: list[float]) -> Tensor:
    """y * 2^p_j for the j where onehot is 1 (p_j may be fractional).

    The public weights 2^(p_j + K) are encoded at scale f; K lifts the smallest
    weight to 2^-f so that every power of two stays exact, and the product is
    shifted down by K afterwards. Products stay below 2^(K + 2f + 1) before
    truncation (2^41 for f = 16), which bounds the failure probability of the
    two-party probabilistic truncation by about 2^-22 per element.
    """
    f = y.scale if y.scale else 16
    boost = max(0, int(np.ceil(-min(powers))) - f)
    factor = (await (onehot * _column([2.0 ** (p + boost) for p in powers], y.ndim))).sum(axis=0)
    out = await (y * factor)
    return await out.ldexp(-boost) if boost else out


async def reciprocal(x: Tensor) -> Tensor:
    """1/x for |x| in [2^-(f/2), 2^24); the sign is handled by one comparison."""
    negative = await x.msb()
    flip = await (negative * x)
    magnitude = x - (flip + flip)
    m, exponents, onehot = await _normalise(magnitude)
    r = await _newton_reciprocal(m, (await (m * -2.0)) + 2.9142)
    r = await _times_power(r, onehot, [-(j + 1) for j in exponents])
    flip_r = await (negative * r)
    return r - (flip_r + flip_r)


async def divide(a: Tensor, b: Tensor) -> Tensor:
    return await (a * (await reciprocal(b)))


async def rsqrt(x: Tensor) -> Tensor:
    """1/sqrt(x) for x > 0: Newton y <- y (3 - m y^2) / 2 on the normalised m."""
    m, exponents, onehot = await _normalise(x)
    y = (await (m * -0.8)) + 1.8
    for _ in range(4):
        my2 = await (m * (await (y * y)))
        y = await (y * ((await (my2 * -0.5)) + 1.5))
    return await _times_power(y, onehot, [-(j + 1) / 2 for j in exponents])


async def sqrt(x: Tensor) -> Tensor:
    return await (x * (await rsqrt(x)))


async def log(x: Tensor) -> Tensor:
    """ln x for x > 0: ln m (degree-8 fit on [0.5, 1]) + (j + 1) ln 2."""
    m, exponents, onehot = await _normalise(x)
    log_m = await horner((await (m * 2)) - 1.0, _fit("log", 0.0, 1.0, 8))
    weights = _column([(j + 1) * np.log(2.0) for j in exponents], x.ndim)
    return log_m + (await (onehot * weights)).sum(axis=0)


async def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x - max) / sum: the shift keeps exp's argument <= 0 and the sum in [1, n]."""
    axis %= x.ndim
    top = await maximum_reduce(x, axis)
    shifted = x - _expand(top, axis, x.shape)
    e = await exp(shifted)
    total = e.sum(axis=axis, keepdims=True)
    return await (e * _expand(await reciprocal(total.reshape(*top.shape)), axis, x.shape))


def _expand(t: Tensor, axis: int, shape: tuple[int, ...]) -> Tensor:
    dims = list(shape)
    dims[axis] = 1
    return t.reshape(*dims).broadcast_to(shape)
