"""Streaming quality check of one data file against its schema.

:class:`QualityChecker` consumes record batches one by one (bounded memory,
except for an 8-byte fingerprint per row kept to find duplicate keys) and
collects, per column:
type and encoding errors, nulls where none are allowed, values outside the
declared range or categories, invalid credit codes, and a distribution
summary (exact count, mean, standard deviation, min and max; quantiles from
a systematic sample of at most ``SAMPLE_CAP`` values; top categories).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data import uscc
from meshmpc.data.coerce import coerce
from meshmpc.data.keyhash import fingerprints, key_strings, repeated_rows
from meshmpc.data.keynorm import KeyRule
from meshmpc.data.protect import mask_text
from meshmpc.data.report import ROWS_KEPT, ColumnSummary, Issue, QualityReport
from meshmpc.data.schema import Column, Schema

SAMPLE_CAP = 8192
KEY_RULE = KeyRule()
"""Duplicate keys are found after the same normalisation PSI and PIR apply."""
INVALID_KINDS = ("encoding", "type_error", "out_of_range", "category", "invalid_key")
"""Issue kinds that make a present value invalid (counted in the column summary)."""
SHOWN_CHARS = 60
WORKERS = min(4, os.cpu_count() or 1)
TOP_CAP = 2000
TOP_SHOWN = 10
HISTOGRAM_BINS = 20
_QUANTILES = (("p01", 0.01), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p99", 0.99))


class ColumnTracker:
    """Running statistics and issue rows of one column."""

    def __init__(self, column: Column, is_key: bool) -> None:
        self.column = column
        self.is_key = is_key
        self.present = 0
        self.missing = 0
        self.invalid = 0
        self.finite = 0
        self.mean = 0.0
        self.squares = 0.0
        self.low = np.inf
        self.high = -np.inf
        self.sample: list[np.ndarray] = []
        self.sample_size = 0
        self.sample_seen = 0
        self.stride = 1
        self.counts: dict[str, int] | None = {} if column.type != "float" else None
        self.issues: dict[str, Issue] = {}
        self.dates: tuple[object, object] | None = None
        self._bad: np.ndarray | None = None

    def flag(self, kind: str, message: str, mask: np.ndarray, first_row: int,
             severity: str = "error", values: pa.Array | None = None) -> None:
        """Record the rows of ``mask`` (relative to ``first_row``) under one issue.

        Rows flagged by any value check also count as ``invalid`` in the column
        summary, so the column table and the issue list always agree.
        """
        if kind in INVALID_KINDS and self._bad is not None:
            self._bad |= mask
        hits = np.flatnonzero(mask)
        if hits.size == 0:
            return
        issue = self.issues.setdefault(
            kind, Issue(kind, severity, self.column.name, message))
        issue.count += int(hits.size)
        room = ROWS_KEPT - len(issue.rows)
        if room > 0:
            issue.rows.extend(int(r) + first_row + 1 for r in hits[:room])
            if values is not None:
                picked = values.take(pa.array(hits[:room])).to_pylist()
                issue.values.extend(_shown(v, self.column) for v in picked)

    def add(self, array: pa.Array, first_row: int) -> pa.Array:
        """Check one chunk; return it converted to the column's type."""
        col = self.column
        converted = coerce(array, col)
        self._bad = np.zeros(len(converted.values), dtype=bool)
        raw = _readable(array)
        self.flag("encoding", "text is not valid UTF-8", converted.encoding_error, first_row,
                  values=raw)
        self.flag("type_error", f"value is not a valid {col.type}", converted.type_error,
                  first_row, values=raw)
        values = converted.values
        null = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        null_only = null & ~converted.type_error & ~converted.encoding_error
        self.missing += int(null_only.sum())
        self.present += int((~null).sum())
        if not col.nullable or self.is_key:
            self.flag("null", "missing value where the schema allows none", null_only, first_row)
        self._check_values(values, null, first_row)
        self.invalid += int(self._bad.sum())
        self._bad = None
        self._summarise(values)
        return values

    def _check_values(self, values: pa.Array, null: np.ndarray, first_row: int) -> None:
        col = self.column
        if col.numeric and (col.min is not None or col.max is not None):
            data = values.cast(pa.float64(), safe=False).fill_null(np.nan).to_numpy()
            with np.errstate(invalid="ignore"):
                low = data < col.min if col.min is not None else np.zeros(len(data), bool)
                high = data > col.max if col.max is not None else np.zeros(len(data), bool)
            self.flag("out_of_range", f"value outside {_bounds(col)}",
                      low | high, first_row, values=values)
        if col.categories is not None and col.type in ("category", "string"):
            known = pc.is_in(values, value_set=pa.array(col.categories, pa.string()))
            bad = ~np.asarray(known.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
            self.flag("category", f"value not among the {len(col.categories)} categories",
                      bad & ~null, first_row, values=values)
        if col.format == "uscc":
            self.flag("invalid_key", "not a valid unified social credit code (GB 32100-2015)",
                      ~uscc.valid_mask(values) & ~null, first_row, values=values)

    def _summarise(self, values: pa.Array) -> None:
        col = self.column
        if col.numeric:
            # safe=False: integers beyond 2^53 (18-digit codes) summarised as nearest floats
            data = values.drop_null().cast(pa.float64(), safe=False).to_numpy()
            data = data[np.isfinite(data)]
            if data.size:
                self._merge_moments(data)
                self.low = min(self.low, float(data.min()))
                self.high = max(self.high, float(data.max()))
                self._keep_sample(data)
        if col.type == "date" and len(values.drop_null()):
            bounds = pc.min_max(values)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            old = self.dates or (low, high)
            self.dates = (min(old[0], low), max(old[1], high))
        if self.counts is not None and not (self.is_key or col.format or col.masked):
            self._count_values(values)

    def _merge_moments(self, data: np.ndarray) -> None:
        """Chan et al.'s pairwise update of count, mean and squared deviations (stable)."""
        count, mean = len(data), float(data.mean())
        squares = float(np.square(data - mean).sum())
        total = self.finite + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.squares += squares + delta * delta * self.finite * count / total
        self.finite = total

    def _keep_sample(self, data: np.ndarray) -> None:
        """Keep every ``stride``-th value; halve the sample when it outgrows the cap."""
        offset = (-self.sample_seen) % self.stride
        self.sample_seen += len(data)
        self.sample.append(data[offset :: self.stride])
        self.sample_size += len(self.sample[-1])
        while self.sample_size > SAMPLE_CAP:
            merged = np.concatenate(self.sample)[::2]
            self.sample, self.sample_size, self.stride = [merged], len(merged), self.stride * 2

    def _count_values(self, values: pa.Array) -> None:
        assert self.counts is not None
        for entry in pc.value_counts(values.drop_null()).to_pylist():
            key = str(entry["values"])
            self.counts[key] = self.counts.get(key, 0) + int(entry["counts"])
        if len(self.counts) > TOP_CAP:
            self.counts = None  # too many distinct values to be worth a top list

    def summary(self) -> ColumnSummary:
        col = self.column
        stats: dict[str, float | str] = {}
        if col.numeric and self.finite:
            stats.update(mean=self.mean, std=float(np.sqrt(self.squares / self.finite)),
                         min=self.low, max=self.high)
            sample = np.concatenate(self.sample)
            for label, q in _QUANTILES:
                stats[label] = float(np.quantile(sample, q))
        if self.dates is not None and not col.masked:  # a date of birth is an identifier
            stats.update(min=str(self.dates[0]), max=str(self.dates[1]))
        top: list[tuple[str, int]] = []
        if self.counts:
            stats["distinct"] = float(len(self.counts))
            top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SHOWN]
        histogram: tuple[list[float], list[int]] | None = None
        if col.numeric and self.finite:
            histogram = _histogram(np.concatenate(self.sample), self.finite)
        return ColumnSummary(col.name, col.type, col.unit, col.sensitivity, self.present,
                             self.missing, self.invalid, stats, top, col.description,
                             histogram, col.level or "")


def _histogram(sample: np.ndarray, rows: int) -> tuple[list[float], list[int]] | None:
    """Bin edges and counts (scaled from the sample to ``rows``), or None when the
    values are too close for float bins (e.g. 18-digit codes a few apart)."""
    try:
        counts, edges = np.histogram(sample, bins=HISTOGRAM_BINS)
    except ValueError:
        return None
    scale = rows / max(int(counts.sum()), 1)  # the sample stands for every row
    return [float(e) for e in edges], [round(int(c) * scale) for c in counts]


def _readable(array: pa.Array) -> pa.Array:
    """Raw values for the report: binary shown as text (undecodable bytes replaced)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def _shown(value: object, column: Column) -> str:
    """A value as the report shows it: text, never ``b'...'``, cut to SHOWN_CHARS, masked.

    A sensitive column's values are masked by the column's rule; any other
    value still has credit codes, ID numbers and phone numbers in it masked,
    in case the schema under-declares a column.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = "" if value is None else str(value)
    text = column.shown(text) if column.masked else mask_text(text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _bounds(column: Column) -> str:
    low = "-inf" if column.min is None else f"{column.min:g}"
    high = "inf" if column.max is None else f"{column.max:g}"
    return f"[{low}, {high}]"


class QualityChecker:
    """Check a stream of batches against a schema; :meth:`finish` gives the report."""

    def __init__(self, schema: Schema, path: str) -> None:
        self.schema = schema
        self.path = path
        self.rows = 0
        self.trackers = {c.name: ColumnTracker(c, c.name in schema.key) for c in schema.columns}
        self.file_issues: list[Issue] = []
        self.prints: list[np.ndarray] = []
        self.key_valid: list[np.ndarray] = []
        self.header_seen = False
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="quality")

    def add(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        """Check one batch (its rows follow the previous batch's); return it converted."""
        if not self.header_seen:
            self._check_header(batch.schema.names)
        names = set(batch.schema.names)
        present = [(n, t) for n, t in self.trackers.items() if n in names]
        first_row = self.rows
        # columns are independent; Arrow and numpy release the GIL, so two threads help
        results = self.pool.map(lambda item: item[1].add(batch.column(item[0]), first_row),
                                present)
        converted = {name: values for (name, _), values in zip(present, results, strict=True)}
        if self.schema.key and all(k in converted for k in self.schema.key):
            keys = key_strings([converted[k] for k in self.schema.key], KEY_RULE)
            self.prints.append(fingerprints(keys))
            self.key_valid.append(np.asarray(keys.is_valid().to_numpy(zero_copy_only=False)))
        self.rows += batch.num_rows
        return converted

    def close(self) -> None:
        """Stop the worker threads (idempotent); :meth:`finish` calls it too."""
        self.pool.shutdown()

    def _check_header(self, names: list[str]) -> None:
        self.header_seen = True
        missing = [n for n in self.schema.names if n not in names]
        extra = [n for n in names if n not in self.trackers]
        for name in missing:
            self.file_issues.append(Issue("missing_column", "error", name,
                                          "column declared in the schema is not in the file"))
        if extra:
            self.file_issues.append(Issue("extra_column", "warning", None,
                                          f"columns not in the schema (ignored): {extra}"))

    def finish(self, duplicates: tuple[np.ndarray, int] | None = None) -> QualityReport:
        """Build the report with the whole-file checks.

        ``duplicates`` is ``(rows, distinct values)`` of the confirmed duplicate
        keys (see :func:`meshmpc.data.validate.check`), None when there are none.
        """
        self.close()
        if not self.header_seen:
            self._check_header([])
        issues = list(self.file_issues)
        if self.rows == 0:
            issues.append(Issue("empty", "error", None, "the file has no data rows"))
        duplicate = self._duplicates(duplicates)
        for tracker in self.trackers.values():
            issues.extend(tracker.issues.values())
            issues.extend(self._missing_rate(tracker))
        if duplicate is not None:
            issues.append(duplicate)
        return QualityReport(self.path, self.schema.path, self.schema.name, self.rows,
                             [t.summary() for t in self.trackers.values()], issues)

    def _missing_rate(self, tracker: ColumnTracker) -> list[Issue]:
        limit = tracker.column.max_missing
        summary_rate = tracker.missing / max(self.rows, 1)
        if limit is None or summary_rate <= limit:
            return []
        return [Issue("missing_rate", "warning", tracker.column.name,
                      f"missing rate {summary_rate:.1%} is above the declared {limit:.1%}",
                      tracker.missing)]

    def duplicate_candidates(self) -> np.ndarray:
        """0-based rows whose key fingerprint repeats; the caller confirms them exactly."""
        if not self.prints:
            return np.zeros(0, dtype=np.int64)
        prints, self.prints = np.concatenate(self.prints), []
        valid, self.key_valid = np.concatenate(self.key_valid), []
        return repeated_rows(prints, valid)

    def _duplicates(self, confirmed: tuple[np.ndarray, int] | None) -> Issue | None:
        if confirmed is None or confirmed[0].size == 0:
            return None
        rows, values = confirmed
        return Issue("duplicate_key", "error", ", ".join(self.schema.key),
                     f"{values} key value(s) occur more than once", int(rows.size),
                     [int(r) + 1 for r in rows[:ROWS_KEPT]])
