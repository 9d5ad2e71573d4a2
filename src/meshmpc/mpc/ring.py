"""The rings secret shares live in: Z_2^64 (default) and Z_2^128 (high precision).

A *ring array* is a numpy uint64 array. For Z_2^64 it has the logical shape;
numpy's uint64 arithmetic already wraps mod 2^64. For Z_2^128 it has one extra
trailing axis of length 2 holding the (lo, hi) words, and the arithmetic runs in
C (``meshmpc._core.ring128_*``). Protocol code manipulates ring arrays only
through a :class:`Ring`, so the same protocol runs over either ring.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc import _core
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.prg import Prg

Shape = tuple[int, ...]


class Ring(ABC):
    """Arithmetic and layout of one ring Z_2^bits over numpy uint64 storage."""

    bits: int
    words: int  # uint64 words per element

    @property
    def name(self) -> str:
        return f"Z_2^{self.bits}"

    # --- layout -------------------------------------------------------------
    def shape(self, a: np.ndarray) -> Shape:
        """Logical shape of a ring array."""
        return tuple(a.shape[: a.ndim - (self.words - 1)])

    def zeros(self, shape: Sequence[int]) -> np.ndarray:
        return np.zeros(self._storage(tuple(shape)), dtype=np.uint64)

    def _storage(self, shape: Shape) -> Shape:
        return shape if self.words == 1 else (*shape, self.words)

    def random(self, prg: Prg, shape: Sequence[int], nonce: int, stream: int = 0) -> np.ndarray:
        """Uniform ring elements from ``prg`` at (nonce, stream)."""
        storage = self._storage(tuple(shape))
        return prg.words(int(np.prod(storage, dtype=np.int64)), nonce, stream).reshape(storage)

    def reshape(self, a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return a.reshape(self._storage(tuple(shape)))

    def transpose(self, a: np.ndarray, axes: Sequence[int] | None = None) -> np.ndarray:
        nd = len(self.shape(a))
        order = list(reversed(range(nd))) if axes is None else list(axes)
        return np.ascontiguousarray(a.transpose(order + list(range(nd, a.ndim))))

    def getitem(self, a: np.ndarray, key: Any) -> np.ndarray:
        if self.words == 1:
            return np.ascontiguousarray(a[key])
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            key = (*key, slice(None))
        return np.ascontiguousarray(a[key])

    def concatenate(self, arrays: Sequence[np.ndarray], axis: int = 0) -> np.ndarray:
        nd = len(self.shape(arrays[0]))
        return np.concatenate(arrays, axis=axis % nd if nd else 0)

    def broadcast_to(self, a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, self._storage(tuple(shape))))

    # --- arithmetic -----------------------------------------------------------
    @abstractmethod
    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def sum(self, a: np.ndarray, axis: int | None = None) -> np.ndarray: ...

    @abstractmethod
    def sar(self, a: np.ndarray, s: int) -> np.ndarray:
        """Arithmetic (two's complement) right shift."""

    @abstractmethod
    def shr(self, a: np.ndarray, s: int) -> np.ndarray:
        """Logical right shift."""

    @abstractmethod
    def from_int(self, x: Any) -> np.ndarray:
        """Ring elements from Python/numpy integers (taken mod 2^bits)."""

    @abstractmethod
    def encode(self, x: Any, frac_bits: int) -> np.ndarray:
        """Fixed point: round(x * 2^frac_bits) in two's complement."""

    @abstractmethod
    def decode(self, a: np.ndarray, frac_bits: int) -> np.ndarray:
        """Inverse of :meth:`encode` (float64; signed interpretation)."""

    def neg(self, a: np.ndarray) -> np.ndarray:
        return self.sub(self.zeros(self.shape(a)), a)

    def iadd(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a += b in place (a must be a contiguous array this caller owns); returns a."""
        return self._inplace(a, b, subtract=False)

    def isub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a -= b in place; returns a."""
        return self._inplace(a, b, subtract=True)

    def _inplace(self, a: np.ndarray, b: np.ndarray, subtract: bool) -> np.ndarray:
        result = self.sub(a, b) if subtract else self.add(a, b)
        a[...] = result
        return a

    def shl(self, a: np.ndarray, s: int) -> np.ndarray:
        return self.mul(a, self.broadcast_to(self.from_int(1 << s), self.shape(a)))

    def msb(self, a: np.ndarray) -> np.ndarray:
        """Top bit of each element as uint64 0/1 (logical shape)."""
        top = a if self.words == 1 else a[..., -1]
        return top >> np.uint64(63)


class Ring64(Ring):
    """Z_2^64 on plain numpy uint64 (wrap-around arithmetic is native)."""

    bits = 64
    words = 1

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.add(a, b, dtype=np.uint64)

    def _inplace(self, a: np.ndarray, b: np.ndarray, subtract: bool) -> np.ndarray:
        if subtract:
            return np.subtract(a, b, out=a, dtype=np.uint64)
        return np.add(a, b, out=a, dtype=np.uint64)

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.subtract(a, b, dtype=np.uint64)

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.multiply(a, b, dtype=np.uint64)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 2 and b.ndim == 2 and a.T.flags.c_contiguous and not a.flags.c_contiguous:
            # a transposed view (X^T in a gradient): stream X's rows in C
            out = np.empty((a.shape[0], b.shape[1]), dtype=np.uint64)
            _core.ring64_matmul_tn(a.T, np.ascontiguousarray(b, dtype=np.uint64), out)
            return out
        return np.matmul(a, b, dtype=np.uint64)

    def sum(self, a: np.ndarray, axis: int | None = None) -> np.ndarray:
        return np.asarray(np.sum(a, axis=axis, dtype=np.uint64))

    def sar(self, a: np.ndarray, s: int) -> np.ndarray:
        return (a.view(np.int64) >> np.int64(s)).view(np.uint64)

    def shr(self, a: np.ndarray, s: int) -> np.ndarray:
        return a >> np.uint64(s)

    def shl(self, a: np.ndarray, s: int) -> np.ndarray:
        return a << np.uint64(s)

    def from_int(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype == object:
            return np.vectorize(lambda v: int(v) % 2**64, otypes=[np.uint64])(arr)
        return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind in "ib" else arr.astype(
            np.uint64
        )

    def encode(self, x: Any, frac_bits: int) -> np.ndarray:
        scaled = np.rint(np.asarray(x, dtype=np.float64) * float(2**frac_bits))
        if np.any(np.abs(scaled) >= 2.0**63):
            raise MpcError(f"value too large for {self.name} with {frac_bits} fraction bits")
        return scaled.astype(np.int64).view(np.uint64)

    def decode(self, a: np.ndarray, frac_bits: int) -> np.ndarray:
        return a.view(np.int64).astype(np.float64) / float(2**frac_bits)


class Ring128(Ring):
    """Z_2^128 as (lo, hi) uint64 word pairs; products and shifts run in C."""

    bits = 128
    words = 2

    def _binary(self, fn: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.broadcast_arrays(a, b)
        a = np.ascontiguousarray(a)
        b = np.ascontiguousarray(b)
        out = np.empty_like(a)
        fn(a.reshape(-1), b.reshape(-1), out.reshape(-1))
        return out

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._binary(_core.ring128_add, a, b)

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._binary(_core.ring128_sub, a, b)

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._binary(_core.ring128_mul, a, b)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        sa, sb = self.shape(a), self.shape(b)
        if len(sa) != 2 or len(sb) != 2 or sa[1] != sb[0]:
            raise MpcError(f"{self.name} matmul needs 2-D operands (m,k)@(k,p), got {sa}@{sb}")
        out = self.zeros((sa[0], sb[1]))
        _core.ring128_matmul(
            np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1),
            out.reshape(-1), sa[0], sa[1], sb[1],
        )
        return out

    def sum(self, a: np.ndarray, axis: int | None = None) -> np.ndarray:
        shape = self.shape(a)
        if axis is None:
            flat = self.reshape(a, (1, int(np.prod(shape, dtype=np.int64))))
            return self.reshape(self.matmul(flat, self.from_int(np.ones((flat.shape[1], 1),
                                                                          np.int64))), ())
        axis %= len(shape)
        moved = np.moveaxis(a, axis, -2)
        rest = moved.shape[:-2]
        mat = np.ascontiguousarray(moved).reshape(-1, shape[axis], 2)
        ones = self.from_int(np.ones((shape[axis], 1), np.int64))
        return self.reshape(self.matmul(mat, ones), rest)

    def _unary(self, fn: Any, a: np.ndarray, s: int) -> np.ndarray:
        a = np.ascontiguousarray(a)
        out = np.empty_like(a)
        fn(a.reshape(-1), out.reshape(-1), s)
        return out

    def sar(self, a: np.ndarray, s: int) -> np.ndarray:
        return self._unary(_core.ring128_sar, a, s)

    def shr(self, a: np.ndarray, s: int) -> np.ndarray:
        return self._unary(_core.ring128_shr, a, s)

    def from_int(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype == object:
            ints = np.vectorize(lambda v: int(v) % 2**128, otypes=[object])(arr)
            lo = np.vectorize(lambda v: v & (2**64 - 1), otypes=[np.uint64])(ints)
            hi = np.vectorize(lambda v: v >> 64, otypes=[np.uint64])(ints)
            return np.stack([lo, hi], axis=-1).astype(np.uint64)
        signed = arr.astype(np.int64)
        hi = np.where(signed < 0, np.uint64(2**64 - 1), np.uint64(0)).astype(np.uint64)
        return np.stack([signed.view(np.uint64), hi], axis=-1)

    def encode(self, x: Any, frac_bits: int) -> np.ndarray:
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
        if np.any(np.abs(arr) * 2.0**frac_bits >= 2.0**127):
            raise MpcError(f"value too large for {self.name} with {frac_bits} fraction bits")
        out = np.empty((*arr.shape, 2), dtype=np.uint64)
        _core.ring128_from_double(arr.reshape(-1), out.reshape(-1), frac_bits)
        return out

    def decode(self, a: np.ndarray, frac_bits: int) -> np.ndarray:
        a = np.ascontiguousarray(a)
        out = np.empty(self.shape(a), dtype=np.float64)
        _core.ring128_to_double(a.reshape(-1), out.reshape(-1), frac_bits)
        return out


RING64 = Ring64()
RING128 = Ring128()


def ring_for(bits: int) -> Ring:
    """The ring Z_2^bits (64 or 128)."""
    if bits == 64:
        return RING64
    if bits == 128:
        return RING128
    raise MpcError(f"unsupported ring size {bits}; use 64 or 128")
