"""SecretTensor: numpy-like secret-shared fixed-point arrays over any suite.

A :class:`SecureBackend` binds a suite (semi2k or rep3) and fixed-point
parameters; ``await backend.input(owner, array)`` turns a party's plaintext
into a SecretTensor and ``await t.reveal()`` opens it. Shapes broadcast like
numpy for element-wise operations; ``@`` takes 1-D or 2-D operands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.linalg.base import Operand, TensorBase
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.fixedpoint import FixedPoint
from meshmpc.mpc.suite import Share, Suite


class SecureBackend:
    """A suite plus fixed-point parameters: the factory of SecretTensors."""

    def __init__(self, suite: Suite, fixed: FixedPoint | None = None) -> None:
        self.suite = suite
        self.fixed = fixed or FixedPoint(ring_bits=suite.ring.bits)
        if self.fixed.ring_bits != suite.ring.bits:
            raise MpcError(f"fixed point is for Z_2^{self.fixed.ring_bits} but the suite "
                           f"runs over {suite.ring.name}")
        self.ring = suite.ring
        self.f = self.fixed.f

    async def input(self, owner: str, value: Any = None, shape: Sequence[int] | None = None,
                    integer: bool = False) -> SecretTensor:
        """Secret-share ``value`` held by ``owner``; the other parties pass ``shape``.

        Non-owners may pass ``value=None`` and the shape; the owner's value is
        encoded with ``frac_bits`` fraction bits (or as integers when ``integer``).
        """
        scale = 0 if integer else self.f
        if self.suite.ctx.party == owner:
            arr = np.asarray(value, dtype=np.float64)
            shape = arr.shape
            encoded = self.ring.from_int(np.rint(arr).astype(np.int64)) if integer else \
                self.ring.encode(arr, scale)
        else:
            if shape is None:
                raise MpcError(f"party {self.suite.ctx.party}: pass the shape of "
                               f"{owner}'s input")
            encoded = None
        share = await self.suite.input(owner, encoded, tuple(shape))
        return SecretTensor(self, share, scale)

    def constant(self, value: Any) -> SecretTensor:
        """A trivial sharing of a public value (useful to start accumulations)."""
        arr = np.asarray(value, dtype=np.float64)
        return SecretTensor(self, self.suite.public(self.ring.encode(arr, self.f)), self.f)

    def encode(self, value: Any, scale: int) -> np.ndarray:
        arr = np.asarray(value)
        if scale == 0 and arr.dtype.kind in "iub":
            return self.ring.from_int(arr)
        return self.ring.encode(np.asarray(arr, dtype=np.float64), scale)


def _is_integral(value: np.ndarray) -> bool:
    return value.dtype.kind in "iub" or bool(np.all(np.rint(value) == value))


class SecretTensor(TensorBase):
    """A secret-shared fixed-point tensor: this party's share, its scale, its backend."""

    def __init__(self, backend: SecureBackend, share: Share, scale: int) -> None:
        self.backend = backend
        self.share = share
        self._scale = scale

    @property
    def suite(self) -> Suite:
        return self.backend.suite

    @property
    def shape(self) -> tuple[int, ...]:
        return self.suite.shape(self.share)

    @property
    def scale(self) -> int:
        return self._scale

    @property
    def dtype(self) -> str:
        return f"fxp{self.backend.ring.bits}(f={self._scale})"

    def __repr__(self) -> str:
        return f"SecretTensor(shape={self.shape}, dtype={self.dtype}, suite={self.suite.name})"

    def _new(self, share: Share, scale: int | None = None) -> SecretTensor:
        return SecretTensor(self.backend, share, self._scale if scale is None else scale)

    def _lift(self, fn: Any) -> SecretTensor:
        return self._new(self.suite.lift(fn, self.share))

    # --- scale and shape alignment -------------------------------------------------
    def rescale(self, scale: int) -> SecretTensor:
        """The same values at a larger scale (a local shift)."""
        if scale == self._scale:
            return self
        if scale < self._scale:
            raise MpcError("rescale only raises the scale; use truncation to lower it")
        ring, k = self.backend.ring, scale - self._scale
        return SecretTensor(self.backend, self.suite.lift(lambda a: ring.shl(a, k), self.share),
                            scale)

    def broadcast_to(self, shape: Sequence[int]) -> SecretTensor:
        shape = tuple(shape)
        if shape == self.shape:
            return self
        ring = self.backend.ring
        return self._lift(lambda a: ring.broadcast_to(a, shape))

    def _align(self, other: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
        shape = np.broadcast_shapes(self.shape, other.shape)
        scale = max(self._scale, other._scale)
        return (self.rescale(scale).broadcast_to(shape), other.rescale(scale).broadcast_to(shape))

    def _public(self, other: Operand) -> tuple[SecretTensor, np.ndarray]:
        """Self (maybe upscaled) and the public operand encoded at self's scale."""
        value = np.asarray(other)
        me = self if self._scale or _is_integral(value) else self.rescale(self.backend.f)
        shape = np.broadcast_shapes(me.shape, value.shape)
        encoded = self.backend.encode(value, me._scale)
        return me.broadcast_to(shape), self.backend.ring.broadcast_to(encoded, shape)

    # --- local arithmetic ---------------------------------------------------------------
    def add(self, other: Operand) -> SecretTensor:
        if isinstance(other, SecretTensor):
            a, b = self._align(other)
            return a._new(self.suite.add(a.share, b.share))
        me, c = self._public(other)
        return me._new(self.suite.add_public(me.share, c))

    def neg(self) -> SecretTensor:
        return self._new(self.suite.neg(self.share))

    async def _truncate(self, share: Share, scale: int) -> SecretTensor:
        f = self.backend.f
        if scale <= f:
            return self._new(share, scale)
        trunc = self.suite.trunc_exact if self.backend.fixed.exact_trunc else self.suite.trunc
        return self._new(await trunc(share, scale - f), f)

    async def mul(self, other: Operand) -> SecretTensor:
        if isinstance(other, SecretTensor):
            a, b = self._align_shapes(other)
            return await self._truncate(await self.suite.mul(a.share, b.share),
                                        a._scale + b._scale)
        value = np.asarray(other)
        scale = 0 if _is_integral(value) else self.backend.f
        shape = np.broadcast_shapes(self.shape, value.shape)
        me = self.broadcast_to(shape)
        c = self.backend.ring.broadcast_to(self.backend.encode(value, scale), shape)
        return await self._truncate(self.suite.mul_public(me.share, c), self._scale + scale)

    def _align_shapes(self, other: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
        shape = np.broadcast_shapes(self.shape, other.shape)
        return self.broadcast_to(shape), other.broadcast_to(shape)

    async def matmul(self, other: Operand) -> SecretTensor:
        a, squeeze = _as_matrix(self, left=True)
        if isinstance(other, SecretTensor):
            b, squeeze_b = _as_matrix(other, left=False)
            out = await self.suite.matmul(a.share, b.share)
            scale = a._scale + b._scale
        else:
            value = np.asarray(other, dtype=np.float64)
            mat = value if value.ndim == 2 else value.reshape(-1, 1)
            squeeze_b = value.ndim == 1
            out = self.suite.matmul_public(a.share, self.backend.encode(mat, self.backend.f))
            scale = a._scale + self.backend.f
        result = await self._truncate(out, scale)
        return _unmatrix(result, squeeze, squeeze_b)

    async def rmatmul(self, other: Operand) -> SecretTensor:
        value = np.asarray(other, dtype=np.float64)
        b, squeeze_b = _as_matrix(self, left=False)
        mat = value if value.ndim == 2 else value.reshape(1, -1)
        out = self.suite.matmul_public(b.share, self.backend.encode(mat, self.backend.f),
                                       left=True)
        result = await self._truncate(out, b._scale + self.backend.f)
        return _unmatrix(result, value.ndim == 1, squeeze_b)

    async def msb(self) -> SecretTensor:
        return self._new(await self.suite.msb(self.share), 0)

    async def ldexp(self, k: int) -> SecretTensor:
        if k >= 0:
            up = self.rescale(self._scale + k)
            return up._new(up.share, self._scale)
        return await self._truncate(self.share, self._scale - k)

    # --- reductions and layout -------------------------------------------------------------
    def sum(self, axis: int | None = None, keepdims: bool = False) -> SecretTensor:
        ring = self.backend.ring
        out = self._lift(lambda a: ring.sum(a, axis))
        if keepdims:
            shape = list(self.shape)
            for ax in range(len(shape)) if axis is None else [axis % len(shape)]:
                shape[ax] = 1
            return out.reshape(*shape)
        return out

    def reshape(self, *shape: Any) -> SecretTensor:
        dims = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) \
            else tuple(shape)
        target = np.empty(self.shape, dtype=np.bool_).reshape(dims).shape
        ring = self.backend.ring
        return self._lift(lambda a: ring.reshape(a, target))

    def transpose(self, axes: Sequence[int] | None = None) -> SecretTensor:
        return self._new(self.suite.transpose(self.share, axes))

    def __getitem__(self, key: Any) -> SecretTensor:
        ring = self.backend.ring
        return self._lift(lambda a: ring.getitem(a, key))

    def concat(self, others: Sequence[TensorBase], axis: int = 0) -> SecretTensor:
        parts = [self, *(o for o in others if isinstance(o, SecretTensor))]
        if len(parts) != len(others) + 1:
            raise MpcError("concatenate: every operand must be a SecretTensor")
        scale = max(p._scale for p in parts)
        shares = [p.rescale(scale).share for p in parts]
        ring = self.backend.ring
        return self._new(self.suite.lift(lambda *a: ring.concatenate(a, axis), *shares), scale)

    async def reveal(self, to: str | None = None) -> np.ndarray | None:
        opened = await self.suite.reveal(self.share, to)
        if opened is None:
            return None
        return self.backend.ring.decode(opened, self._scale)


def _as_matrix(t: SecretTensor, left: bool) -> tuple[SecretTensor, bool]:
    if t.ndim == 2:
        return t, False
    if t.ndim == 1:
        return (t.reshape(1, -1) if left else t.reshape(-1, 1)), True
    raise MpcError(f"@ takes 1-D or 2-D operands, got shape {t.shape}")


def _unmatrix(t: SecretTensor, squeeze_left: bool, squeeze_right: bool) -> SecretTensor:
    shape = list(t.shape)
    if squeeze_right:
        shape.pop(1)
    if squeeze_left:
        shape.pop(0)
    return t.reshape(*shape) if len(shape) != t.ndim else t
