"""Check data against its schema, and stop a joint job when it does not conform.

* :func:`check` streams a source through the quality checks and returns the
  :class:`QualityReport` whatever it finds;
* :func:`validate` does the same but raises :class:`SchemaViolation` (a
  :class:`meshmpc.errors.DataError`) naming file, column and rows on any error;
* :func:`load_validated` validates and returns the data converted to the
  schema's types, so a job reads its input once;
* :func:`validate_inputs` checks every party's input in one process (the
  local demo); in a real joint job each party calls
  :func:`meshmpc.data.jobcheck.validate_party_input` on its own node.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.coerce import coerce
from meshmpc.data.errors import SchemaViolation
from meshmpc.data.keyhash import key_strings
from meshmpc.data.loaders import BATCH_ROWS, Source, iter_batches, prefetch, source_kind
from meshmpc.data.quality import KEY_RULE, QualityChecker
from meshmpc.data.report import QualityReport
from meshmpc.data.schema import Schema, load_schema
from meshmpc.progress import RowProgress

SchemaLike = Schema | str | Path


def _schema(schema: SchemaLike) -> Schema:
    return schema if isinstance(schema, Schema) else load_schema(schema)


def _batches(
    schema: Schema, source: Source, batch_rows: int, columns: list[str] | None = None,
    **options: Any,
) -> Iterator[pa.RecordBatch]:
    if source_kind(source) == "csv":
        raw = {name: pa.binary() for name in schema.names}  # parse ourselves, row by row
        return prefetch(iter_batches(source, columns, batch_rows, column_types=raw,
                                     schema=schema, encoding=options.get("encoding"),
                                     delimiter=options.get("delimiter")))
    return prefetch(iter_batches(source, columns, batch_rows, **options))


def _estimate_rows(source: Source) -> int | None:
    """Rows of a CSV file estimated from its size and first MiB (for the progress bar)."""
    if source_kind(source) != "csv" or not Path(str(source)).is_file():
        return None
    path = Path(str(source))
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    lines = max(head.count(b"\n"), 1)
    return max(int(path.stat().st_size / len(head) * lines) - 1, 1) if head else None


def _display(source: Source) -> str:
    return str(source) if isinstance(source, str | Path) else type(source).__name__


def check(schema: SchemaLike, source: Source, batch_rows: int = BATCH_ROWS,
          progress: bool = False, **options: Any) -> QualityReport:
    """Run every quality check on ``source``; never raises for bad values.

    ``progress`` shows a bar on stderr (rows, rate, time left).
    """
    spec = _schema(schema)
    checker = QualityChecker(spec, _display(source))
    bar = RowProgress(f"checking {_display(source)}", _estimate_rows(source), progress)
    try:
        for batch in _batches(spec, source, batch_rows, **options):
            checker.add(batch)
            bar.update(batch.num_rows)
    finally:
        bar.close()
        checker.close()
    return checker.finish(_confirm_duplicates(spec, source, checker, **options))


def _confirm_duplicates(
    spec: Schema, source: Source, checker: QualityChecker, **options: Any
) -> tuple[np.ndarray, int] | None:
    """Re-read the key columns of the candidate rows and compare the actual values."""
    candidates = checker.duplicate_candidates()
    if candidates.size == 0:
        return None
    columns = [spec.column(k) for k in spec.key]
    found: list[pa.Array] = []
    start = 0
    for batch in _batches(spec, source, BATCH_ROWS, list(spec.key), **options):
        stop = start + batch.num_rows
        inside = candidates[(candidates >= start) & (candidates < stop)] - start
        if inside.size:
            picked = batch.take(pa.array(inside))
            found.append(key_strings([coerce(picked.column(c.name), c).values
                                      for c in columns], KEY_RULE))
        start = stop
    keys = pa.chunked_array(found, type=pa.string())
    counts = pc.value_counts(keys.drop_null())
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    mask = np.asarray(pc.is_in(keys, value_set=repeated).to_numpy(zero_copy_only=False))
    return candidates[mask], len(repeated)


def validate(schema_path: SchemaLike, input_path: Source, **options: Any) -> QualityReport:
    """Check ``input_path`` against its schema; raise :class:`SchemaViolation` on errors."""
    report = check(schema_path, input_path, **options)
    if not report.ok:
        raise SchemaViolation(report.path, report.problems(), report)
    return report


def load_validated(
    schema: SchemaLike, source: Source, columns: Sequence[str] | None = None,
    **options: Any,
) -> tuple[pa.Table, QualityReport]:
    """Validate ``source`` and return it converted to the schema's types.

    Raises :class:`SchemaViolation` when the data breaks the schema.
    """
    spec = _schema(schema)
    wanted = list(columns) if columns else spec.names
    target = pa.schema([pa.field(n, spec.column(n).arrow_type) for n in wanted])
    checker = QualityChecker(spec, _display(source))
    batches: list[pa.RecordBatch] = []
    try:
        for batch in _batches(spec, source, BATCH_ROWS, **options):
            converted = checker.add(batch)
            if all(n in converted for n in wanted):
                batches.append(pa.RecordBatch.from_arrays([converted[n] for n in wanted],
                                                          schema=target))
    finally:
        checker.close()
    report = checker.finish(_confirm_duplicates(spec, source, checker, **options))
    if not report.ok:
        raise SchemaViolation(report.path, report.problems(), report)
    return pa.Table.from_batches(batches, schema=target), report


def validate_inputs(
    inputs: Mapping[str, tuple[SchemaLike, Source]],
) -> dict[str, QualityReport]:
    """Validate every party's input before a joint job; the error names the party.

    ``inputs`` maps a party name to ``(schema, source)``. All inputs are
    checked so that one run reports every broken file, not only the first.
    """
    reports: dict[str, QualityReport] = {}
    problems: list[str] = []
    for party, (schema, source) in inputs.items():
        report = check(schema, source)
        reports[party] = report
        problems += [f"party {party}: {line}" for line in report.problems()]
    if problems:
        broken = ", ".join(p for p, r in reports.items() if not r.ok)
        raise SchemaViolation(f"the joint job's input from {broken}", problems, reports)
    return reports
