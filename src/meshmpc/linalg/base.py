"""The tensor API shared by SecretTensor and the plaintext reference backend.

Each backend implements a few primitives (add, mul, matmul, msb, layout and
reductions); this mixin derives the numpy-like surface from them, so secure
code and its plaintext reference read the same and the tests can run every
operator on both. Operations that talk to other parties return awaitables:

    z = await (x * y)      h = await (X @ w)      b = await (x < 0.5)

``+``, ``-``, reshaping and sums are local and return tensors directly.
Comparisons return 0/1 tensors of scale 0 (integers), so ``b * x`` costs no
truncation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import numpy as np

from meshmpc.mpc import nonlinear

T = TypeVar("T", bound="TensorBase")
Operand = Any  # a tensor of the same backend, a numpy array or a Python number


class TensorBase(ABC):
    """numpy-like surface over a backend's primitives."""

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]: ...

    @property
    @abstractmethod
    def scale(self) -> int:
        """Fraction bits of the encoding (0 for bits and integers)."""

    @abstractmethod
    def add(self: T, other: Operand) -> T: ...

    @abstractmethod
    def neg(self: T) -> T: ...

    @abstractmethod
    async def mul(self: T, other: Operand) -> T: ...

    @abstractmethod
    async def matmul(self: T, other: Operand) -> T: ...

    @abstractmethod
    async def rmatmul(self: T, other: Operand) -> T:
        """other @ self for a public matrix other."""

    @abstractmethod
    async def msb(self: T) -> T:
        """1 where the value is negative, else 0 (scale 0)."""

    @abstractmethod
    async def ldexp(self: T, k: int) -> T:
        """self * 2^k for an integer k (k < 0 truncates; local for k >= 0)."""

    @abstractmethod
    def sum(self: T, axis: int | None = None, keepdims: bool = False) -> T: ...

    @abstractmethod
    def reshape(self: T, *shape: Any) -> T: ...

    @abstractmethod
    def transpose(self: T, axes: Sequence[int] | None = None) -> T: ...

    @abstractmethod
    def __getitem__(self: T, key: Any) -> T: ...

    @abstractmethod
    def broadcast_to(self: T, shape: Sequence[int]) -> T: ...

    @abstractmethod
    def concat(self: T, others: Sequence[T], axis: int = 0) -> T:
        """Concatenate self and others along axis."""

    @abstractmethod
    async def reveal(self, to: str | None = None) -> np.ndarray | None:
        """Plain float values (to everyone, or only to party ``to``)."""

    # --- derived layout ---------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def T(self: T) -> T:  # noqa: N802 - numpy's name
        return self.transpose()

    def flatten(self: T) -> T:
        return self.reshape(-1)

    def mean(self: T, axis: int | None = None) -> Awaitable[T]:
        count = self.size if axis is None else self.shape[axis]
        return self.sum(axis).mul(1.0 / count)

    # --- operators ------------------------------------------------------------
    def __add__(self: T, other: Operand) -> T:
        return self.add(other)

    def __radd__(self: T, other: Operand) -> T:
        return self.add(other)

    def __neg__(self: T) -> T:
        return self.neg()

    def __sub__(self: T, other: Operand) -> T:
        return self.add(-other if isinstance(other, TensorBase) else -np.asarray(other))

    def __rsub__(self: T, other: Operand) -> T:
        return self.neg().add(other)

    def __mul__(self: T, other: Operand) -> Awaitable[T]:
        return self.mul(other)

    def __rmul__(self: T, other: Operand) -> Awaitable[T]:
        return self.mul(other)

    def __matmul__(self: T, other: Operand) -> Awaitable[T]:
        return self.matmul(other)

    def __rmatmul__(self: T, other: Operand) -> Awaitable[T]:
        return self.rmatmul(other)

    def __truediv__(self: T, other: Operand) -> Awaitable[T]:
        if isinstance(other, TensorBase):
            return nonlinear.divide(self, other)
        return self.mul(1.0 / np.asarray(other, dtype=np.float64))

    def dot(self: T, other: Operand) -> Awaitable[T]:
        return self.matmul(other)

    # --- comparisons (awaitable 0/1 tensors) ------------------------------------
    def __lt__(self: T, other: Operand) -> Awaitable[T]:  # type: ignore[override]
        return (self - other).msb()

    def __gt__(self: T, other: Operand) -> Awaitable[T]:  # type: ignore[override]
        return (self.neg() + other).msb()

    async def _not(self: T, bit: Awaitable[T]) -> T:
        return (await bit).neg() + 1

    def __le__(self: T, other: Operand) -> Awaitable[T]:  # type: ignore[override]
        return self._not(self.__gt__(other))

    def __ge__(self: T, other: Operand) -> Awaitable[T]:  # type: ignore[override]
        return self._not(self.__lt__(other))

    # --- non-linear functions (meshmpc.mpc.nonlinear) ---------------------------
    def sign(self: T) -> Awaitable[T]:
        return nonlinear.sign(self)

    def abs(self: T) -> Awaitable[T]:
        return nonlinear.absolute(self)

    def relu(self: T) -> Awaitable[T]:
        return nonlinear.relu(self)

    def clip(self: T, low: float, high: float) -> Awaitable[T]:
        return nonlinear.clip(self, low, high)

    def max(self: T, axis: int = -1) -> Awaitable[T]:
        return nonlinear.maximum_reduce(self, axis)

    def argmax(self: T, axis: int = -1) -> Awaitable[T]:
        return nonlinear.argmax(self, axis)

    def sigmoid(self: T, method: str = "poly8") -> Awaitable[T]:
        return nonlinear.sigmoid(self, method)

    def exp(self: T) -> Awaitable[T]:
        return nonlinear.exp(self)

    def log(self: T) -> Awaitable[T]:
        return nonlinear.log(self)

    def reciprocal(self: T) -> Awaitable[T]:
        return nonlinear.reciprocal(self)

    def sqrt(self: T) -> Awaitable[T]:
        return nonlinear.sqrt(self)

    def rsqrt(self: T) -> Awaitable[T]:
        return nonlinear.rsqrt(self)

    def softmax(self: T, axis: int = -1) -> Awaitable[T]:
        return nonlinear.softmax(self, axis)


def select(cond: T, a: Operand, b: Operand) -> Awaitable[T]:
    """cond ? a : b element-wise for a 0/1 tensor cond."""
    return nonlinear.select(cond, a, b)


def concatenate(tensors: Sequence[T], axis: int = 0) -> T:
    """numpy.concatenate for tensors of one backend."""
    return tensors[0].concat(list(tensors[1:]), axis)
