"""As-of joins: a partner's features as they were on each sample's observation date.

Credit models must only see what was known when the loan was decided. Every
sample has an observation date (``obs_date``, the bank's column named in
``parties.<bank>.obs_date``); a partner's value is usable only if it was
recorded at or before that date, never later. Two layouts are supported:

- **snapshots** (monthly extracts, one row per key and snapshot date):
  :func:`asof_join` takes, for every sample, the latest snapshot at or before
  its date (none: nulls);
- **timestamped columns** (a feature column with a recorded-at companion,
  ``<col>_recorded_at`` or named explicitly): :func:`mask_recorded_after`
  blanks every value recorded after the sample's date and drops the companion
  columns; :func:`unavailable_columns` names the columns with no usable value
  left, which binning then excludes.

Vectorised with numpy (sorting and ``searchsorted``), no per-row Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.errors import DataError

RECORDED_SUFFIX = "_recorded_at"


def to_days(column: pa.ChunkedArray | pa.Array, name: str, null_late: bool = False
            ) -> np.ndarray:
    """Dates (date32/date64, timestamp or ISO ``YYYY-MM-DD`` strings) as int64 days since
    1970-01-01. A null becomes the smallest int64 (an observation date nothing precedes)
    or, with ``null_late``, the largest (a recording time never early enough)."""
    kind = column.type
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            column = pc.cast(column, pa.date32())
        elif pa.types.is_timestamp(kind) or pa.types.is_date64(kind):
            column = pc.cast(pc.floor_temporal(column, unit="day"), pa.date32()) \
                if pa.types.is_timestamp(kind) else pc.cast(column, pa.date32())
        elif not pa.types.is_date32(kind):
            raise DataError(f"column {name!r} is {kind}; expected dates (date, timestamp "
                            f"or YYYY-MM-DD strings)")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"column {name!r}: cannot read as dates ({exc})") from None
    days = pc.cast(column, pa.int32())
    if isinstance(days, pa.ChunkedArray):
        days = days.combine_chunks()
    values = days.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if days.null_count:
        limits = np.iinfo(np.int64)
        values[days.is_null().to_numpy(zero_copy_only=False)] = \
            limits.max if null_late else limits.min
    return values


def recorded_at_columns(table: pa.Table,
                        explicit: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{feature: its recorded-at column}``: explicit ones plus ``<col>_recorded_at`` pairs."""
    pairs = dict(explicit or {})
    for name in table.column_names:
        if name.endswith(RECORDED_SUFFIX) and name[: -len(RECORDED_SUFFIX)] in table.column_names:
            pairs.setdefault(name[: -len(RECORDED_SUFFIX)], name)
    for feature, stamp in pairs.items():
        for col in (feature, stamp):
            if col not in table.column_names:
                raise DataError(f"recorded_at names column {col!r}, which the table lacks")
    return pairs


def mask_recorded_after(table: pa.Table, obs_days: np.ndarray,
                        recorded_at: Mapping[str, str]) -> pa.Table:
    """``table`` with every value recorded after its row's observation date set to null,
    and the recorded-at columns dropped."""
    if len(obs_days) != table.num_rows:
        raise DataError(f"{len(obs_days)} observation dates for {table.num_rows} rows")
    for feature, stamp in recorded_at.items():
        recorded = to_days(table.column(stamp), stamp, null_late=True)
        late = recorded > obs_days
        column = table.column(feature)
        masked = pc.if_else(pa.array(late), pa.scalar(None, column.type), column)
        table = table.set_column(table.column_names.index(feature), feature, masked)
    return table.drop_columns(sorted(set(recorded_at.values())))


def unavailable_columns(table: pa.Table, columns: Sequence[str]) -> list[str]:
    """Columns with no value left (everything recorded too late, or all missing)."""
    return [c for c in columns if table.column(c).null_count == table.num_rows]


def _codes(left: pa.ChunkedArray, right: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of both key columns over the right side's distinct keys (-1: absent)."""
    distinct = pc.unique(right.combine_chunks() if isinstance(right, pa.ChunkedArray)
                         else right)
    lc = pc.index_in(left, value_set=distinct).fill_null(-1).to_numpy(zero_copy_only=False)
    rc = pc.index_in(right, value_set=distinct).fill_null(-1).to_numpy(zero_copy_only=False)
    return np.asarray(lc, dtype=np.int64), np.asarray(rc, dtype=np.int64)


def asof_positions(left_keys: pa.ChunkedArray, left_days: np.ndarray,
                   right_keys: pa.ChunkedArray, right_days: np.ndarray) -> np.ndarray:
    """For each left row, the right row with the same key and the latest date at or before
    the left row's date (-1 when there is none)."""
    lc, rc = _codes(left_keys, right_keys)
    all_days = np.concatenate([left_days, right_days])
    ranks = np.unique(all_days, return_inverse=True)[1].astype(np.int64)
    span = int(ranks.max()) + 2 if ranks.size else 2
    left_rank, right_rank = ranks[: len(left_days)], ranks[len(left_days):]
    right_composite = rc * span + right_rank
    order = np.argsort(right_composite, kind="stable")
    sorted_composite = right_composite[order]
    at = np.searchsorted(sorted_composite, lc * span + left_rank, side="right") - 1
    found = (at >= 0) & (lc >= 0)
    at = np.where(found, at, 0)
    same_key = found & (sorted_composite[at] // span == lc) if order.size else found
    return np.where(same_key, order[at] if order.size else -1, -1)


def asof_join(left: pa.Table, right: pa.Table, key: str, left_date: str, right_date: str,
              columns: Sequence[str] | None = None) -> pa.Table:
    """``left`` plus ``columns`` of ``right`` as of each left row's ``left_date``: the values
    of the right row with the same ``key`` and the latest ``right_date`` at or before it
    (nulls when the key has no such row). Never a value dated later."""
    for table, col, side in ((left, key, "left"), (left, left_date, "left"),
                             (right, key, "right"), (right, right_date, "right")):
        if col not in table.column_names:
            raise DataError(f"as-of join: the {side} table has no column {col!r}")
    columns = [c for c in (columns or right.column_names) if c not in (key, right_date)]
    pos = asof_positions(left.column(key), to_days(left.column(left_date), left_date),
                         right.column(key),
                         to_days(right.column(right_date), right_date, null_late=True))
    take = pa.array(np.where(pos >= 0, pos, 0), mask=pos < 0)
    out = left
    for col in columns:
        name = col if col not in left.column_names else f"{col}_asof"
        out = out.append_column(name, right.column(col).take(take))
    return out
