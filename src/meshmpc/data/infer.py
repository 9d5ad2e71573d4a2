"""Draft a schema from a data file, for a party connecting a new source.

The draft is a starting point to review, not a contract: types come from
Arrow for Parquet and databases; CSV text is typed here, conservatively:
a column is ``int`` or ``float`` only when every value is a plain number with
no leading zero (``075510025723`` is a phone number, ``00012`` a code: both
stay strings) and integers have at most 15 digits (longer digit strings are
identifiers: 18-digit credit codes and ID card numbers, 16-19 digit bank card
numbers; as numbers they would lose digits in any float); ``bool`` for true/false
words, ``date`` for ISO dates; anything else is a string. Text columns with few distinct values
become categories, columns whose values are all valid unified social credit
codes get ``format = "uscc"``, the first column becomes the key when its
values are unique, and every column is marked ``confidential`` until the
owner decides otherwise. Observed numeric ranges are written as ``min`` and
``max`` only with ``ranges=True`` (the next month's data may rightly exceed
them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data import uscc
from meshmpc.data.errors import DataReadError
from meshmpc.data.keyhash import fingerprints, key_strings, repeated_rows
from meshmpc.data.loaders import NULL_TEXT, Source, iter_batches, source_kind
from meshmpc.data.schema import Column, Schema

MAX_CATEGORIES = 20
MAX_TRACKED = 10_000
_TEXT_KINDS = {
    "int": r"^[+-]?(0|[1-9]\d{0,14})$",
    "float": (r"^[+-]?(0|[1-9]\d{0,14})$"  # a whole number: at most 15 digits, as for int
              r"|^[+-]?(0|[1-9]\d*)?\.\d+([eE][+-]?\d+)?$|^[+-]?(0|[1-9]\d*)(\.\d+)?[eE][+-]?\d+$"),
    "bool": r"^(true|false|True|False|TRUE|FALSE)$",
    "date": r"^\d{4}-\d{2}-\d{2}$",
}
_ARROW_OF_KIND = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
                  "date": pa.date32()}


class TextTyper:
    """Which types every value seen so far in a CSV text column fits (vectorised)."""

    def __init__(self) -> None:
        self.fits = {kind: True for kind in _TEXT_KINDS}

    def add(self, text: pa.Array) -> pa.Array:
        """Record one chunk; return it with null markers and empty strings as nulls."""
        text = text.cast(pa.string())
        empty = pc.is_in(text, value_set=pa.array(NULL_TEXT, pa.string()))
        text = pc.if_else(empty, pa.scalar(None, pa.string()), text)
        present = text.drop_null()
        for kind, pattern in _TEXT_KINDS.items():
            if self.fits[kind] and len(present):
                ok = pc.match_substring_regex(present, pattern)
                numberish = kind != "float" or bool(pc.all(pc.match_substring_regex(
                    present, r"\d")).as_py())
                self.fits[kind] = bool(pc.all(ok).as_py()) and numberish
        return text

    def kind(self, rows_present: int) -> pa.DataType:
        """The narrowest type that fits every value (text when nothing was present)."""
        if rows_present:
            for kind in ("int", "float", "bool", "date"):
                if self.fits[kind]:
                    return _ARROW_OF_KIND[kind]
        return pa.string()


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
            bounds = pc.min_max(present)  # in the column's own type: 18-digit codes exceed float
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


def _typed(text: pa.Array, kind: pa.DataType) -> pa.Array:
    if kind == pa.bool_():
        return pc.equal(pc.utf8_lower(text), "true")
    if kind == pa.date32():
        return pc.strptime(text, format="%Y-%m-%d", unit="s").cast(pa.date32())
    return text.cast(kind)


def _text_columns(source: Source, options: dict[str, object]) -> tuple[dict[str, pa.DataType],
                                                                        int]:
    """First pass over a CSV file: the type each text column fits, and the row count."""
    typers: dict[str, TextTyper] = {}
    present: dict[str, int] = {}
    rows = 0
    for batch in iter_batches(source, schema_beside=False, text=True,
                              **options):  # type: ignore[arg-type]
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            values = typers.setdefault(name, TextTyper()).add(array)
            present[name] = present.get(name, 0) + len(values) - values.null_count
        rows += batch.num_rows
    return {n: t.kind(present[n]) for n, t in typers.items()}, rows


def _batches(source: Source, options: dict[str, object]) -> Iterator[pa.RecordBatch]:
    """The batches to observe: Arrow-typed, or for CSV typed from the text."""
    if source_kind(source) != "csv":
        yield from iter_batches(source, schema_beside=False, **options)  # type: ignore[arg-type]
        return
    kinds, _ = _text_columns(source, options)
    for batch in iter_batches(source, schema_beside=False, text=True,
                              **options):  # type: ignore[arg-type]
        arrays = []
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            empty = pc.is_in(array, value_set=pa.array(NULL_TEXT, pa.string()))
            text = pc.if_else(empty, pa.scalar(None, pa.string()), array)
            arrays.append(_typed(text, kinds[name]))
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def infer_schema(source: Source, name: str | None = None, ranges: bool = False,
                 **options: object) -> Schema:
    """Draft a :class:`Schema` for ``source`` from one streaming pass over it.

    A CSV file with a header but no rows gives every column as a nullable
    string, with a warning on stderr (there is nothing to infer types from).
    """
    observed: dict[str, _Observed] = {}
    first_prints: list[np.ndarray] = []
    rows = 0
    for batch in _batches(source, dict(options)):
        for column_name, array in zip(batch.schema.names, batch.columns, strict=True):
            observed.setdefault(column_name, _Observed(array.type)).add(array)
        if batch.num_columns and batch.num_rows:
            first_prints.append(fingerprints(key_strings([batch.column(0)])))
        rows += batch.num_rows
    if not observed:
        raise DataReadError(source, "has no columns to draft a schema from")
    if rows == 0:
        sys.stderr.write(f"data infer: warning: {source} has a header but no rows; every "
                         f"column is drafted as a nullable string: set the types by hand\n")
    columns = tuple(_column(n, seen, rows, ranges) for n, seen in observed.items())
    if rows == 0:
        columns = tuple(Column(c.name, "string", nullable=True, sensitivity="confidential")
                        for c in columns)
    key = (columns[0].name,) if columns and _unique(observed[columns[0].name], first_prints) \
        else ()
    default = Path(str(source)).name.split(".")[0] if isinstance(source, str | Path) else "data"
    return Schema(name=name or default, columns=columns, key=key,
                  description="drafted by meshmpc data infer; review before use")
