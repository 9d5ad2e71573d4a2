"""A feature matrix held as one byte a cell: bin codes and a value table per column.

WOE features take at most 255 distinct values per column (one per bin), so an
n x d WOE matrix is an n x d uint8 code matrix plus a d x K float table: at 10^6
rows x 500 columns 0.5 GB instead of 4 GB of float64. :class:`CodedMatrix` is that
pair; it decodes rows to float64 only when asked (``m[lo:hi]`` gives a view whose
``np.asarray`` is the decoded block), so the products stream it a tile at a time
(:class:`meshmpc.ml.product.RowMatrix`). Row permutations and column rescaling touch
the codes once and the tables only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

DECODE_CELLS = 1 << 22
"""Cells decoded at a time by :meth:`CodedMatrix.matmul` (32 MB of float64)."""


class CodedMatrix:
    """An n x d float matrix as uint8 codes (n x d, C order) and values (d x K)."""

    def __init__(self, codes: np.ndarray, values: np.ndarray,
                 parent: CodedMatrix | None = None, lo: int = 0) -> None:
        if codes.dtype != np.uint8 or codes.ndim != 2:
            raise ValueError("codes must be an n x d uint8 array")
        if values.ndim != 2 or values.shape[0] != codes.shape[1]:
            raise ValueError(f"values must be {codes.shape[1]} x K, got {values.shape}")
        self.codes, self.values = codes, np.ascontiguousarray(values, dtype=np.float64)
        self.parent, self.lo = parent, lo
        self._offsets = (np.arange(codes.shape[1], dtype=np.intp) * self.values.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float64)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.values.nbytes)

    @classmethod
    def from_table(cls, table: pa.Table, names: Sequence[str]) -> CodedMatrix:
        """The dictionary-encoded columns ``names`` of ``table`` (ml.binning's WOE)."""
        n, width = table.num_rows, max((_dictionary(table, c)[1].size for c in names),
                                       default=1)
        codes = np.empty((n, len(names)), dtype=np.uint8)
        values = np.zeros((len(names), max(width, 1)))
        for j, name in enumerate(names):
            index, table_j = _dictionary(table, name)
            codes[:, j] = index
            values[j, : table_j.size] = table_j
        return cls(codes, values)

    def decode(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows lo..hi as a float64 array."""
        block = self.codes[lo:hi]
        return np.take(self.values.ravel(), block.astype(np.intp) + self._offsets)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.decode()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> CodedMatrix:
        """Rows: a slice gives a view (``parent`` and ``lo`` say where it lies), an
        index array or a boolean mask a copy of those rows' codes."""
        if isinstance(key, slice):
            lo, hi, step = key.indices(self.shape[0])
            if step != 1:
                return CodedMatrix(self.codes[key].copy(), self.values)
            base = self.parent if self.parent is not None else self
            return CodedMatrix(self.codes[lo:hi], self.values, base, self.lo + lo)
        return CodedMatrix(np.ascontiguousarray(self.codes[np.asarray(key)]), self.values)

    @classmethod
    def hstack(cls, blocks: Sequence[CodedMatrix]) -> CodedMatrix:
        """The blocks side by side (same rows): codes joined, tables padded to one width."""
        width = max((b.values.shape[1] for b in blocks), default=1)
        values = np.vstack([np.pad(b.values, ((0, 0), (0, width - b.values.shape[1])))
                            for b in blocks])
        return cls(np.hstack([b.codes for b in blocks]), values)

    def decode_rows(self, rows: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """The rows ``rows`` (indices or a mask) decoded to ``dtype``, DECODE_CELLS cells
        at a time: a float32 10^6 x 1,000 copy costs its 4 GB and no float64 one."""
        index = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        n, d = index.size, self.shape[1]
        out = np.empty((n, d), dtype=dtype)
        step = max(1, DECODE_CELLS // max(d, 1))
        flat = self.values.ravel()
        for lo in range(0, n, step):
            block = self.codes[index[lo: lo + step]].astype(np.intp) + self._offsets
            out[lo: lo + step] = np.take(flat, block)
        return out

    def scaled(self, divisors: np.ndarray) -> CodedMatrix:
        """Column j divided by divisors[j] (the codes are shared, not copied)."""
        return CodedMatrix(self.codes, self.values / np.asarray(divisors)[:, None])

    def column_std(self) -> np.ndarray:
        """Per-column standard deviation, from the code counts (no decoding)."""
        n, d = self.shape
        if n == 0:
            return np.zeros(d)
        k = self.values.shape[1]
        counts = np.stack([np.bincount(self.codes[:, j], minlength=k)[:k] for j in range(d)])
        mean = (counts * self.values).sum(axis=1) / n
        var = (counts * (self.values - mean[:, None]) ** 2).sum(axis=1) / n
        return np.sqrt(np.maximum(var, 0.0))

    def matmul(self, w: np.ndarray) -> np.ndarray:
        """self @ w, decoding DECODE_CELLS cells at a time."""
        n, d = self.shape
        step = max(1, DECODE_CELLS // max(d, 1))
        parts = [self.decode(lo, min(lo + step, n)) @ w for lo in range(0, n, step)]
        return np.concatenate(parts) if parts else np.zeros((0, *np.shape(w)[1:]))

    def __matmul__(self, w: np.ndarray) -> np.ndarray:
        return self.matmul(w)


def _dictionary(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A dictionary column's uint8 indices and float values."""
    column = table.column(name).combine_chunks()
    if not pa.types.is_dictionary(column.type) or column.null_count:
        raise ValueError(f"column {name!r} is not a dictionary-encoded WOE column")
    index = column.indices.to_numpy(zero_copy_only=False)
    values = column.dictionary.to_numpy(zero_copy_only=False).astype(np.float64)
    if values.size > 256 or (index.size and int(index.max()) >= values.size):
        raise ValueError(f"column {name!r}: more than 256 codes or an index out of range")
    return index.astype(np.uint8, copy=False), values


def is_coded(table: pa.Table, names: Sequence[str]) -> bool:
    """Whether every column of ``names`` is dictionary-encoded over floats (compact WOE)."""
    return bool(names) and all(
        pa.types.is_dictionary(t := table.schema.field(c).type)
        and pa.types.is_floating(t.value_type) and table.column(c).null_count == 0
        for c in names)
