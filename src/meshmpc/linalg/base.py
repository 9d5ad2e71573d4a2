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

TensorT = TypeVar("TensorT", bound="TensorBase")
Operand = Any  # a tensor of the same backend, a numpy array or a Python number


class TensorBase(ABC):
    """numpy-like surface over a backend's primitives."""

    __array_ufunc__ = None  # numpy defers to our reflected operators (array @ tensor)

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]: ...

    @property
    @abstractmethod
    def scale(self) -> int:
        """Fraction bits of the encoding (0 for bits and integers)."""

    @abstractmethod
    def add(self: TensorT, other: Operand) -> TensorT: ...

    @abstractmethod
    def neg(self: TensorT) -> TensorT: ...

    @abstractmethod
    async def mul(self: TensorT, other: Operand) -> TensorT: ...

    @abstractmethod
    async def matmul(self: TensorT, other: Operand) -> TensorT: ...

    @abstractmethod
    async def rmatmul(self: TensorT, other: Operand) -> TensorT:
        """other @ self for a public matrix other."""

    @abstractmethod
    async def msb(self: TensorT) -> TensorT:
        """1 where the value is negative, else 0 (scale 0)."""

    @abstractmethod
    async def ldexp(self: TensorT, k: int) -> TensorT:
        """self * 2^k for an integer k (k < 0 truncates; local for k >= 0)."""

    @abstractmethod
    def sum(self: TensorT, axis: int | None = None, keepdims: bool = False) -> TensorT: ...

    @abstractmethod
    def reshape(self: TensorT, *shape: Any) -> TensorT: ...

    @abstractmethod
    def transpose(self: TensorT, axes: Sequence[int] | None = None) -> TensorT: ...

    @abstractmethod
    def __getitem__(self: TensorT, key: Any) -> TensorT: ...

    @abstractmethod
    def broadcast_to(self: TensorT, shape: Sequence[int]) -> TensorT: ...

    @abstractmethod
    def concat(self: TensorT, others: Sequence[TensorT], axis: int = 0) -> TensorT:
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
    def T(self: TensorT) -> TensorT:  # noqa: N802 - numpy's name
        return self.transpose()

    def flatten(self: TensorT) -> TensorT:
        return self.reshape(-1)

    def mean(self: TensorT, axis: int | None = None) -> Awaitable[TensorT]:
        count = self.size if axis is None else self.shape[axis]
        return self.sum(axis).mul(1.0 / count)

    # --- operators ------------------------------------------------------------
    def __add__(self: TensorT, other: Operand) -> TensorT:
        return self.add(other)

    def __radd__(self: TensorT, other: Operand) -> TensorT:
        return self.add(other)

    def __neg__(self: TensorT) -> TensorT:
        return self.neg()

    def __sub__(self: TensorT, other: Operand) -> TensorT:
        return self.add(-other if isinstance(other, TensorBase) else -np.asarray(other))

    def __rsub__(self: TensorT, other: Operand) -> TensorT:
        return self.neg().add(other)

    def __mul__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return self.mul(other)

    def __rmul__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return self.mul(other)

    def __matmul__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return self.matmul(other)

    def __rmatmul__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return self.rmatmul(other)

    def __truediv__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        if isinstance(other, TensorBase):
            return nonlinear.divide(self, other)
        return self.mul(1.0 / np.asarray(other, dtype=np.float64))

    def dot(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return self.matmul(other)

    # --- comparisons (awaitable 0/1 tensors) ------------------------------------
    def __lt__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return (self - other).msb()

    def __gt__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return (self.neg() + other).msb()

    async def _not(self: TensorT, bit: Awaitable[TensorT]) -> TensorT:
        return (await bit).neg() + 1

    def __le__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return self._not(self.__gt__(other))

    def __ge__(self: TensorT, other: Operand) -> Awaitable[TensorT]:
        return self._not(self.__lt__(other))

    # --- non-linear functions (meshmpc.mpc.nonlinear) ---------------------------
    def sign(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.sign(self)

    def abs(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.absolute(self)

    def relu(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.relu(self)

    def clip(self: TensorT, low: float, high: float) -> Awaitable[TensorT]:
        return nonlinear.clip(self, low, high)

    def max(self: TensorT, axis: int = -1) -> Awaitable[TensorT]:
        return nonlinear.maximum_reduce(self, axis)

    def argmax(self: TensorT, axis: int = -1) -> Awaitable[TensorT]:
        return nonlinear.argmax(self, axis)

    def sigmoid(self: TensorT, method: str = "poly8") -> Awaitable[TensorT]:
        return nonlinear.sigmoid(self, method)

    def exp(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.exp(self)

    def log(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.log(self)

    def reciprocal(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.reciprocal(self)

    def sqrt(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.sqrt(self)

    def rsqrt(self: TensorT) -> Awaitable[TensorT]:
        return nonlinear.rsqrt(self)

    def softmax(self: TensorT, axis: int = -1) -> Awaitable[TensorT]:
        return nonlinear.softmax(self, axis)


def select(cond: TensorT, a: Operand, b: Operand) -> Awaitable[TensorT]:
    """cond ? a : b element-wise for a 0/1 tensor cond."""
    return nonlinear.select(cond, a, b)


def concatenate(tensors: Sequence[TensorT], axis: int = 0) -> TensorT:
    """numpy.concatenate for tensors of one backend."""
    return tensors[0].concat(list(tensors[1:]), axis)
