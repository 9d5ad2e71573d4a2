"""Reading PSI inputs (CSV, Parquet) and writing outputs atomically.

Key columns are always read as text, so that leading zeros, long digit strings
and mixed codes survive exactly as written (a credit code must never become a
float). Outputs are written to a temporary file beside the target and renamed
into place only when complete: an interrupted run leaves no partial output.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from meshmpc.psi.errors import PsiInputError

BATCH_ROWS = 1 << 20


def file_format(path: str | Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file name; anything else is an input error."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise PsiInputError(path, f"unknown file type {suffix!r}: use .csv or .parquet")


def _check_columns(path: str | Path, names: Sequence[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in names]
    if missing:
        raise PsiInputError(
            path, f"no column {missing[0]!r}; the file has columns {list(names)}", missing[0]
        )


def _csv_reader(path: Path, keys: Sequence[str], columns: Sequence[str] | None,
                block_bytes: int) -> pacsv.CSVStreamingReader:
    """A streaming CSV reader with the key columns typed as text."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    read = pacsv.ReadOptions(block_size=block_bytes)
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        column_types={k: pa.string() for k in keys},
        include_columns=list(columns) if columns is not None else None,
        strings_can_be_null=False,
    )
    return pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)


class BatchSource:
    """A streamed input: its schema (keys as text) and its record batches."""

    def __init__(self, path: str | Path, keys: Sequence[str],
                 columns: Sequence[str] | None = None, block_bytes: int = 64 << 20) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PsiInputError(self.path, "file not found")
        self.keys = list(keys)
        self.wanted = list(dict.fromkeys([*keys, *(columns or [])]))
        self.include = self.wanted if columns is not None else None
        self.format = file_format(self.path)
        self.block_bytes = block_bytes
        try:
            self.schema = self._schema()
        except (pa.ArrowInvalid, OSError) as exc:
            raise PsiInputError(self.path, f"cannot read: {exc}") from exc

    def _schema(self) -> pa.Schema:
        if self.format == "csv":
            names = _csv_reader(self.path, [], None, 1 << 16).schema.names
            _check_columns(self.path, names, self.wanted)
            return _csv_reader(self.path, self.keys, self.include, 1 << 16).schema
        schema = pq.ParquetFile(self.path).schema_arrow
        _check_columns(self.path, schema.names, self.wanted)
        fields = [pa.field(f.name, pa.string()) if f.name in self.keys else f for f in schema]
        return pa.schema([f for f in fields if self.include is None or f.name in self.include])

    def estimate_rows(self) -> int:
        """Row count: exact for Parquet, from the file size and a sample for CSV."""
        if self.format == "parquet":
            return int(pq.ParquetFile(self.path).metadata.num_rows)
        size = self.path.stat().st_size
        sample = _csv_reader(self.path, self.keys, self.include, 1 << 20)
        batch = next(iter(sample), None)
        if batch is None or batch.num_rows == 0:
            return 0
        if size <= (1 << 20):
            return int(pa.Table.from_batches([batch, *sample]).num_rows)
        return int(size / ((1 << 20) / batch.num_rows)) + 1

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            if self.format == "csv":
                yield from _csv_reader(self.path, self.keys, self.include, self.block_bytes)
            else:
                yield from _parquet_batches(self.path, self.keys, self.include)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PsiInputError(self.path, f"cannot read: {exc}") from exc


def _parquet_batches(p: Path, keys: Sequence[str],
                     include: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    pf = pq.ParquetFile(p)
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=include):
        arrays = [
            batch.column(i).cast(pa.string()) if name in keys else batch.column(i)
            for i, name in enumerate(batch.schema.names)
        ]
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def read_table(path: str | Path, keys: Sequence[str],
               columns: Sequence[str] | None = None) -> pa.Table:
    """The whole file as one table (keys as text); for inputs that fit in memory."""
    source = BatchSource(path, keys, columns)
    batches = list(source)
    if not batches:
        return source.schema.empty_table()
    return pa.Table.from_batches(batches)


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class TableWriter:
    """Append record batches to a CSV or Parquet file that appears only on :meth:`commit`."""

    def __init__(self, path: str | Path, schema: pa.Schema) -> None:
        self.path = Path(path)
        self.format = file_format(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _tmp_path(self.path)
        self.rows = 0
        self._writer: pacsv.CSVWriter | pq.ParquetWriter
        if self.format == "csv":
            self._writer = pacsv.CSVWriter(self.tmp, schema)
        else:
            self._writer = pq.ParquetWriter(self.tmp, schema)

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        self._writer.write_table(data)
        self.rows += data.num_rows

    def commit(self) -> Path:
        """Close the file and move it into place."""
        self._writer.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file; the target is left untouched."""
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` to ``path`` (CSV or Parquet by suffix) atomically."""
    writer = TableWriter(path, table.schema)
    try:
        writer.write(table)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()
