"""The plaintext backend: the SecretTensor API on float64 numpy arrays.

Tests run every operator on both backends and compare: PlainTensor executes
the *same* approximation algorithms as the secure backend (they live in
:mod:`meshmpc.mpc.nonlinear` and only use the tensor API) in floating point,
so a test separates protocol error (secure vs plain) from approximation error
(plain vs the exact function). Scales are tracked only so that results carry
the same integer/real distinction as their secure counterparts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.linalg.base import Operand, TensorBase
from meshmpc.mpc.errors import MpcError

REAL_SCALE = 16


class PlainBackend:
    """Factory of PlainTensors with the SecureBackend signature."""

    f = REAL_SCALE

    async def input(self, owner: str, value: Any = None, shape: Sequence[int] | None = None,
                    integer: bool = False) -> PlainTensor:
        if value is None:
            raise MpcError("the plaintext backend needs the value itself")
        arr = np.asarray(value, dtype=np.float64)
        return PlainTensor(np.rint(arr) if integer else arr, 0 if integer else REAL_SCALE)

    def constant(self, value: Any) -> PlainTensor:
        return PlainTensor(np.asarray(value, dtype=np.float64), REAL_SCALE)


def _value(other: Operand) -> tuple[np.ndarray, int]:
    if isinstance(other, PlainTensor):
        return other.value, other.scale
    arr = np.asarray(other, dtype=np.float64)
    return arr, 0 if bool(np.all(np.rint(arr) == arr)) else REAL_SCALE


class PlainTensor(TensorBase):
    """A float64 array with the SecretTensor API (everything local)."""

    def __init__(self, value: np.ndarray, scale: int = REAL_SCALE) -> None:
        self.value = np.asarray(value, dtype=np.float64)
        self._scale = scale

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def scale(self) -> int:
        return self._scale

    def __repr__(self) -> str:
        return f"PlainTensor(shape={self.shape}, scale={self._scale})"

    def add(self, other: Operand) -> PlainTensor:
        value, scale = _value(other)
        return PlainTensor(self.value + value, max(self._scale, scale))

    def neg(self) -> PlainTensor:
        return PlainTensor(-self.value, self._scale)

    async def mul(self, other: Operand) -> PlainTensor:
        value, scale = _value(other)
        return PlainTensor(self.value * value, min(self._scale + scale, REAL_SCALE))

    async def matmul(self, other: Operand) -> PlainTensor:
        value, _ = _value(other)
        return PlainTensor(self.value @ value, REAL_SCALE)

    async def rmatmul(self, other: Operand) -> PlainTensor:
        value, _ = _value(other)
        return PlainTensor(value @ self.value, REAL_SCALE)

    async def msb(self) -> PlainTensor:
        return PlainTensor((self.value < 0).astype(np.float64), 0)

    async def ldexp(self, k: int) -> PlainTensor:
        return PlainTensor(self.value * 2.0**k, REAL_SCALE if k < 0 else self._scale)

    def sum(self, axis: int | None = None, keepdims: bool = False) -> PlainTensor:
        return PlainTensor(np.asarray(np.sum(self.value, axis=axis, keepdims=keepdims)),
                           self._scale)

    def reshape(self, *shape: Any) -> PlainTensor:
        dims = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) \
            else tuple(shape)
        return PlainTensor(self.value.reshape(dims), self._scale)

    def transpose(self, axes: Sequence[int] | None = None) -> PlainTensor:
        return PlainTensor(np.transpose(self.value, axes), self._scale)

    def __getitem__(self, key: Any) -> PlainTensor:
        return PlainTensor(self.value[key], self._scale)

    def broadcast_to(self, shape: Sequence[int]) -> PlainTensor:
        return PlainTensor(np.broadcast_to(self.value, tuple(shape)).copy(), self._scale)

    def concat(self, others: Sequence[TensorBase], axis: int = 0) -> PlainTensor:
        values = [self.value, *(o.value for o in others if isinstance(o, PlainTensor))]
        scale = max([self._scale, *(o.scale for o in others)])
        return PlainTensor(np.concatenate(values, axis=axis), scale)

    async def reveal(self, to: str | None = None) -> np.ndarray | None:
        return self.value.copy()
