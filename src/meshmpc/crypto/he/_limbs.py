"""Big integers as rows of little-endian 64-bit limbs (the layout of the he C kernels)."""

from __future__ import annotations

from collections.abc import Iterable

import gmpy2
import numpy as np

LIMB_BITS = 64
U64 = np.uint64


def limbs_for(bits: int) -> int:
    """Limbs needed for a number of ``bits`` bits."""
    return max(1, (bits + LIMB_BITS - 1) // LIMB_BITS)


def int_to_limbs(x: int | gmpy2.mpz, width: int | None = None) -> np.ndarray:
    """One non-negative integer as a 1-D limb array (``width`` limbs, default minimal)."""
    x = int(x)
    if x < 0:
        raise ValueError("he: limbs hold non-negative integers only")
    w = width if width is not None else limbs_for(x.bit_length())
    return np.frombuffer(x.to_bytes(8 * w, "little"), dtype=U64).copy()


def limbs_to_int(row: np.ndarray) -> int:
    """A 1-D limb row back to a Python integer."""
    return int.from_bytes(np.ascontiguousarray(row, dtype=U64).tobytes(), "little")


def ints_to_limbs(values: Iterable[int], width: int) -> np.ndarray:
    """Many non-negative integers as a (count, width) limb array."""
    data = b"".join(int(v).to_bytes(8 * width, "little") for v in values)
    return np.frombuffer(data, dtype=U64).reshape(-1, width).copy()


def limbs_to_ints(rows: np.ndarray) -> list[int]:
    """A (count, width) limb array back to Python integers."""
    rows = np.ascontiguousarray(rows, dtype=U64)
    raw = rows.tobytes()
    step = 8 * rows.shape[1]
    return [int.from_bytes(raw[i : i + step], "little") for i in range(0, len(raw), step)]


def random_limbs(count: int, bits: int) -> np.ndarray:
    """``count`` uniform integers of at most ``bits`` bits from the OS generator."""
    import os

    width = limbs_for(bits)
    rows = np.frombuffer(os.urandom(8 * width * count), dtype=U64).reshape(count, width).copy()
    spare = width * LIMB_BITS - bits
    if spare:
        rows[:, -1] &= U64((1 << (LIMB_BITS - spare)) - 1)
    return rows


def sub_limbs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise a - b for limb arrays (a >= b row-wise; a may be one broadcast row)."""
    width = max(a.shape[-1], b.shape[-1])
    a2 = np.zeros((max(np.atleast_2d(a).shape[0], b.shape[0]), width), dtype=U64)
    a2[:, : a.shape[-1]] = a
    out = np.empty_like(a2)
    borrow = np.zeros(a2.shape[0], dtype=U64)
    for j in range(width):
        bj = b[:, j] if j < b.shape[1] else np.zeros(b.shape[0], dtype=U64)
        d = a2[:, j] - bj
        next_borrow = (a2[:, j] < bj) | ((d == 0) & (borrow == 1))
        out[:, j] = d - borrow
        borrow = next_borrow.astype(U64)
    return out
