"""Bit-matrix and block helpers over numpy arrays, each one C call.

Bit strings are packed little-endian (bit j is bit j % 8 of byte j // 8),
matching ``np.packbits(..., bitorder="little")``. GF(2^128) elements are
16-byte little-endian integers, reduced modulo x^128 + x^7 + x^2 + x + 1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.aes import PATH_AUTO, Blocks, as_blocks
from meshmpc.crypto.errors import KernelInputError

U8 = npt.NDArray[np.uint8]


def pack_bits(bits: npt.ArrayLike) -> U8:
    """Pack a 0/1 array (last axis) little-endian."""
    return np.packbits(np.asarray(bits, dtype=np.uint8), axis=-1, bitorder="little")


def unpack_bits(packed: npt.ArrayLike, count: int) -> U8:
    """Inverse of :func:`pack_bits` for ``count`` bits."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), count=count, bitorder="little")


def transpose(matrix: np.ndarray, rows: int, cols: int, path: int = PATH_AUTO) -> U8:
    """Transpose a packed rows x cols bit matrix (both multiples of 8).

    ``matrix`` holds rows * cols / 8 bytes, row-major; the result has shape
    (cols, rows // 8).
    """
    if rows % 8 or cols % 8:
        raise KernelInputError(f"transpose: rows {rows} and cols {cols} must be multiples of 8")
    src = np.ascontiguousarray(matrix)
    if src.nbytes != rows * cols // 8:
        raise KernelInputError(f"transpose: {src.nbytes} bytes, expected {rows * cols // 8}")
    out = np.empty((cols, rows // 8), dtype=np.uint8)
    _core.transpose_into(src, out, rows, cols, path)
    return out


def gf128_mul(a: npt.ArrayLike, b: npt.ArrayLike, path: int = PATH_AUTO) -> Blocks:
    """Element-wise product in GF(2^128) of two (n, 16) arrays."""
    x, y = as_blocks(a, "a"), as_blocks(b, "b")
    if x.shape != y.shape:
        raise KernelInputError(f"gf128_mul: shapes {x.shape} and {y.shape} differ")
    out = np.empty_like(x)
    _core.gf128_mul_into(x, y, out, path)
    return out


def gf128_inner(a: npt.ArrayLike, b: npt.ArrayLike, path: int = PATH_AUTO) -> bytes:
    """sum_i a[i] * b[i] in GF(2^128), as 16 bytes."""
    x, y = as_blocks(a, "a"), as_blocks(b, "b")
    if x.shape != y.shape:
        raise KernelInputError(f"gf128_inner: shapes {x.shape} and {y.shape} differ")
    return bytes(_core.gf128_inner(x, y, path))


def _rows(arr: np.ndarray, name: str) -> np.ndarray:
    src = np.ascontiguousarray(arr)
    if src.ndim != 2 or src.dtype != np.uint8:
        raise KernelInputError(f"{name}: expected 2-D uint8 rows, got {src.shape} {src.dtype}")
    return src


def select_rows(choice_packed: np.ndarray, a: np.ndarray, b: np.ndarray) -> U8:
    """Row j of b where choice bit j is 1, else row j of a (constant-time per row)."""
    x, y = _rows(a, "a"), _rows(b, "b")
    if x.shape != y.shape:
        raise KernelInputError(f"select_rows: shapes {x.shape} and {y.shape} differ")
    out = np.empty_like(x)
    _core.select_into(np.ascontiguousarray(choice_packed), x, y, out, x.shape[0], x.shape[1])
    return out


def xor_where(choice_packed: np.ndarray, delta: np.ndarray, rows: np.ndarray) -> None:
    """rows[j] ^= delta for every j whose choice bit is 1 (in place)."""
    if not rows.flags.c_contiguous or rows.ndim != 2:
        raise KernelInputError("xor_where: rows must be a C-contiguous 2-D array")
    d = np.ascontiguousarray(delta, dtype=np.uint8).reshape(-1)
    if d.size != rows.shape[1]:
        raise KernelInputError(f"xor_where: delta has {d.size} bytes, rows have {rows.shape[1]}")
    _core.xor_where_into(np.ascontiguousarray(choice_packed), d, rows, rows.shape[0], rows.shape[1])
