"""Convert one column chunk to its schema type, marking the values that do not fit.

Text read from CSV (or a mistyped Parquet/database column) is parsed with
Arrow's vectorised kernels; each value that cannot be parsed becomes null in
the result and is marked in a boolean mask, so the quality check can report
its row number instead of failing on the first bad value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.schema import Column

_INT_TEXT = r"^[+-]?\d+(\.0*)?$"
_FLOAT_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|Inf|INF|infinity)$"
_TRUE = ["true", "True", "TRUE", "1", "yes", "Yes", "YES", "t", "T", "y", "Y"]
_FALSE = ["false", "False", "FALSE", "0", "no", "No", "NO", "f", "F", "n", "N"]


@dataclass
class Coerced:
    """A chunk converted to its schema type, with masks of the values that failed."""

    values: pa.Array
    type_error: np.ndarray
    encoding_error: np.ndarray


def coerce(array: pa.Array, column: Column) -> Coerced:
    """Convert ``array`` to ``column``'s type; bad values become null and are masked."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    encoding_error = np.zeros(len(array), dtype=bool)
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        array, encoding_error = _decode_utf8(array)
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    if pa.types.is_string(array.type) and column.type not in ("string", "category"):
        values, bad = _parse_text(array, column)
    else:
        values, bad = _convert_typed(array, column)
    return Coerced(values, bad & ~encoding_error, encoding_error)


def _decode_utf8(array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Binary to UTF-8 strings; undecodable values become null and are masked."""
    try:
        return array.cast(pa.string()), np.zeros(len(array), dtype=bool)
    except pa.ArrowInvalid:
        pass
    decoded: list[str | None] = []
    bad = np.zeros(len(array), dtype=bool)
    for i, raw in enumerate(array.to_pylist()):  # error path only: find the bad rows
        try:
            decoded.append(None if raw is None else raw.decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(None)
            bad[i] = True
    return pa.array(decoded, type=pa.string()), bad


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _parse_text(text: pa.Array, column: Column) -> tuple[pa.Array, np.ndarray]:
    text = pc.utf8_trim_whitespace(text)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    present = _mask(pc.is_valid(text))
    if column.type == "date":
        stamps = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        exact = pc.equal(pc.strftime(stamps, format="%Y-%m-%d"), text)  # rejects 2024-02-30
        values = pc.if_else(exact, stamps, pa.scalar(None, stamps.type)).cast(pa.date32())
        return values, present & ~_mask(pc.is_valid(values))
    if column.type == "bool":
        true = pc.is_in(text, value_set=pa.array(_TRUE))
        false = pc.is_in(text, value_set=pa.array(_FALSE))
        ok = pc.or_(true, false)
        values = pc.if_else(ok, true, pa.scalar(None, pa.bool_()))
        return values, present & ~_mask(ok)
    pattern = _INT_TEXT if column.type == "int" else _FLOAT_TEXT
    ok = pc.match_substring_regex(text, pattern)
    clean = pc.if_else(ok, text, pa.scalar(None, pa.string()))
    if column.type == "int":
        clean = pc.replace_substring_regex(clean, r"\.0*$", "")
        values = _safe_int_cast(clean)
        return values, present & ~_mask(pc.is_valid(values))
    return clean.cast(pa.float64()), present & ~_mask(ok)


def _safe_int_cast(text: pa.Array) -> pa.Array:
    """Cast digit strings to int64; values that overflow become null."""
    try:
        return text.cast(pa.int64())
    except pa.ArrowInvalid:
        wide = text.cast(pa.float64())
        fits = pc.less_equal(pc.abs(wide), 2.0**63 - 1024)
        return pc.if_else(fits, text, pa.scalar(None, pa.string())).cast(pa.int64())


def _convert_typed(array: pa.Array, column: Column) -> tuple[pa.Array, np.ndarray]:
    """Convert an already typed (or text-to-text) array; mismatches are masked."""
    source = array.type
    present = _mask(pc.is_valid(array))
    if pa.types.is_floating(source):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, source), array)
    if column.type in ("string", "category"):
        return _cast_or_reject(array, pa.string(), present)
    if column.type == "float" and _is_number(source):
        return array.cast(pa.float64()), np.zeros(len(array), dtype=bool)
    if column.type == "int" and (pa.types.is_integer(source) or pa.types.is_boolean(source)):
        return array.cast(pa.int64()), np.zeros(len(array), dtype=bool)
    if column.type == "int" and pa.types.is_floating(source):
        whole = pc.and_(pc.is_finite(array), pc.equal(pc.floor(array), array))
        kept = pc.if_else(whole, array, pa.scalar(None, source))
        return kept.cast(pa.int64(), safe=False), _mask(pc.invert(whole))
    if column.type == "bool" and pa.types.is_boolean(source):
        return array, np.zeros(len(array), dtype=bool)
    if column.type == "date" and (pa.types.is_date(source) or pa.types.is_timestamp(source)):
        return array.cast(pa.date32()), np.zeros(len(array), dtype=bool)
    if pa.types.is_null(source):
        return pa.nulls(len(array), column.arrow_type), np.zeros(len(array), dtype=bool)
    return pa.nulls(len(array), column.arrow_type), present


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _cast_or_reject(
    array: pa.Array, target: pa.DataType, present: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    try:
        return array.cast(target), np.zeros(len(array), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(array), target), present
