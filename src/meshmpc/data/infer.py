"""Draft a schema from a data file, for a party connecting a new source.

The draft is a starting point to review, not a contract: types come from
Arrow (CSV: inferred from the text), text columns with few distinct values
become categories, columns whose values are all valid unified social credit
codes get ``format = "uscc"``, the first column becomes the key when its
values are unique, and every column is marked ``confidential`` until the
owner decides otherwise. Observed numeric ranges are written as ``min`` and
``max`` only with ``ranges=True`` (the next month's data may rightly exceed
them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data import uscc
from meshmpc.data.keyhash import fingerprints, key_strings, repeated_rows
from meshmpc.data.loaders import Source, iter_batches
from meshmpc.data.schema import Column, Schema

MAX_CATEGORIES = 20
MAX_TRACKED = 10_000


@dataclass
class _Observed:
    """What one column looked like over the file."""

    arrow_type: pa.DataType
    nulls: int = 0
    low: float = np.inf
    high: float = -np.inf
    values: set[str] | None = field(default_factory=set)
    all_uscc: bool = True

    def add(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        present = array.drop_null()
        if _is_number(array.type) and len(present):
            bounds = pc.min_max(present.cast(pa.float64()))
            self.low = min(self.low, bounds["min"].as_py())
            self.high = max(self.high, bounds["max"].as_py())
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            self.all_uscc = self.all_uscc and bool(uscc.valid_mask(present).all())
        if self.values is not None:
            self.values.update(str(v) for v in pc.unique(present).to_pylist())
            if len(self.values) > MAX_TRACKED:
                self.values = None


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _column(name: str, seen: _Observed, rows: int, ranges: bool) -> Column:
    kind, fmt, categories = _kind(seen.arrow_type), None, None
    if kind == "string" and seen.all_uscc and rows:
        fmt = "uscc"
    elif kind == "string" and seen.values is not None and len(seen.values) <= MAX_CATEGORIES \
            and rows >= 5 * max(len(seen.values), 1):
        kind, categories = "category", tuple(sorted(seen.values))
    bounded = ranges and kind in ("int", "float") and seen.low <= seen.high
    return Column(name, kind, min=seen.low if bounded else None,
                  max=seen.high if bounded else None, categories=categories,
                  nullable=seen.nulls > 0, format=fmt, sensitivity="confidential")


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type):
        return "date"
    return "string"


def _unique(first: _Observed, prints: list[np.ndarray]) -> bool:
    """No nulls and no repeated fingerprint (equal values always share one)."""
    if first.nulls or not prints:
        return False
    everything = np.concatenate(prints)
    return repeated_rows(everything, np.ones(everything.size, dtype=bool)).size == 0


def infer_schema(source: Source, name: str | None = None, ranges: bool = False,
                 **options: object) -> Schema:
    """Draft a :class:`Schema` for ``source`` from one streaming pass over it."""
    observed: dict[str, _Observed] = {}
    first_prints: list[np.ndarray] = []
    rows = 0
    for batch in iter_batches(source, schema_beside=False, **options):  # type: ignore[arg-type]
        for column_name, array in zip(batch.schema.names, batch.columns, strict=True):
            observed.setdefault(column_name, _Observed(array.type)).add(array)
        if batch.num_columns:
            first_prints.append(fingerprints(key_strings([batch.column(0)])))
        rows += batch.num_rows
    columns = tuple(_column(n, seen, rows, ranges) for n, seen in observed.items())
    key = (columns[0].name,) if columns and _unique(observed[columns[0].name], first_prints) \
        else ()
    default = Path(str(source)).name.split(".")[0] if isinstance(source, str | Path) else "data"
    return Schema(name=name or default, columns=columns, key=key,
                  description="drafted by meshmpc data infer; review before use")
