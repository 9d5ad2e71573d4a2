"""Reading PSI inputs (CSV, Parquet, SQL) and writing outputs in two steps.

Inputs go through the same loader as the data tools
(:func:`meshmpc.data.loaders.iter_batches`): CSV/TSV files, Parquet files,
``sqlite:///file.db?table=NAME`` and other database URLs. CSV columns are read
as the text written in the file, so that leading zeros, long digit strings
and mixed codes survive exactly as written (a credit code must never become a
float, a phone number ``075510025723`` never ``75510025723``) unless a schema
gives a column another type. Key columns are always text.

Outputs are written to a temporary file beside the target; :class:`TableWriter`
separates finishing that file from renaming it into place, so a job can
commit its outputs only once every party has written its own
(:mod:`meshmpc.psi.commit`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from meshmpc.data.errors import DataReadError
from meshmpc.data.loaders import iter_batches, source_kind
from meshmpc.data.schema import Schema
from meshmpc.data.sealedfile import SealedWriter
from meshmpc.data.vault import Vault
from meshmpc.psi.errors import PsiInputError

BATCH_ROWS = 1 << 20
SAMPLE_BYTES = 1 << 20


def file_format(path: str | Path) -> str:
    """``"csv"`` or ``"parquet"`` from an output file name; anything else is an input error."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise PsiInputError(path, f"unknown file type {suffix!r}: use .csv or .parquet")


@dataclass(frozen=True)
class ReadOptions:
    """How an input is decoded: text encoding, CSV delimiter, schema for typed columns."""

    encoding: str | None = None
    delimiter: str | None = None
    schema: Schema | None = None


def _check_columns(path: str | Path, names: Sequence[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in names]
    if missing:
        raise PsiInputError(
            path, f"no column {missing[0]!r}; the source has columns {list(names)}", missing[0]
        )


def _as_text(batch: pa.RecordBatch, keys: Sequence[str]) -> pa.RecordBatch:
    """Key columns cast to text (Parquet and databases may hold them as numbers)."""
    if all(batch.schema.field(k).type == pa.string() for k in keys):
        return batch
    arrays = [col.cast(pa.string()) if name in keys else col
              for name, col in zip(batch.schema.names, batch.columns, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


class BatchSource:
    """A streamed input: its schema (keys as text) and its record batches."""

    def __init__(self, path: str | Path, keys: Sequence[str],
                 columns: Sequence[str] | None = None, block_bytes: int = 64 << 20,
                 options: ReadOptions | None = None) -> None:
        self.name = str(path)
        self.path = Path(path)
        self.options = options or ReadOptions()
        try:
            self.kind = source_kind(self.name)
        except DataReadError as exc:
            raise PsiInputError(self.name, str(exc).removeprefix(f"{self.name}: ")) from None
        if self.kind in ("csv", "parquet") and not self.path.is_file():
            raise PsiInputError(self.name, "file not found")
        self.keys = list(keys)
        self.wanted = list(dict.fromkeys([*keys, *(columns or [])]))
        self.include = self.wanted if columns is not None else None
        self.block_bytes = block_bytes
        self.schema = self._schema()

    def _batches(self, columns: Sequence[str] | None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        opts = self.options
        types = {k: pa.string() for k in self.keys}
        if opts.schema is not None:
            types = {c.name: c.arrow_type for c in opts.schema.columns} | types
        try:
            for batch in iter_batches(self.name, columns, batch_rows, column_types=types,
                                      encoding=opts.encoding, delimiter=opts.delimiter,
                                      text=True, schema_beside=False):
                yield _as_text(batch, [k for k in self.keys if k in batch.schema.names])
        except DataReadError as exc:
            raise PsiInputError(self.name, str(exc).removeprefix(f"{self.name}: ")) from None
        except (pa.ArrowInvalid, OSError) as exc:
            raise PsiInputError(self.name, f"cannot read: {exc}") from exc

    def _schema(self) -> pa.Schema:
        first = next(iter(self._batches(None, 1024)), None)
        if first is None:
            raise PsiInputError(self.name, "has no columns")
        _check_columns(self.name, first.schema.names, self.wanted)
        schema = first.schema
        return pa.schema([f for f in schema if self.include is None or f.name in self.include])

    def estimate_rows(self) -> int:
        """Row count: exact for Parquet and small files, from a sample for large CSV."""
        if self.kind == "parquet":
            return int(pq.ParquetFile(self.path).metadata.num_rows)
        if self.kind != "csv":
            return sum(b.num_rows for b in self._batches(self.keys[:1]))
        size = self.path.stat().st_size
        with self.path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
        lines = sample.count(b"\n") + (0 if sample.endswith(b"\n") else 1)
        if size <= SAMPLE_BYTES:
            return max(lines - 1, 0)
        return int(size * lines / len(sample)) + 1

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        yield from (b for b in self._batches(self.include) if b.num_rows)


def read_table(path: str | Path, keys: Sequence[str], columns: Sequence[str] | None = None,
               options: ReadOptions | None = None,
               on_batch: Callable[[int], None] | None = None) -> pa.Table:
    """The whole source as one table (keys as text); for inputs that fit in memory.

    ``on_batch`` is told the row count of each batch read (progress display).
    """
    source = BatchSource(path, keys, columns, options=options)
    batches = []
    for batch in source:
        batches.append(batch)
        if on_batch is not None:
            on_batch(batch.num_rows)
    if not batches:
        return source.schema.empty_table()
    return pa.Table.from_batches(batches, schema=source.schema)


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


def check_writable(path: str | Path, schema: pa.Schema) -> None:
    """Fail now, naming the file, if ``path`` cannot be written (before any protocol step).

    Creates the directory if needed and writes, then deletes, an empty file of
    the output's format and columns beside the target.
    """
    target = Path(path)
    file_format(target)
    try:
        writer = TableWriter(target, schema)
    except OSError as exc:
        raise PsiInputError(target, f"cannot write the output here: {exc.strerror or exc}; "
                                    f"choose a writable --output") from None
    writer.abort()


def sealed_name(path: Path) -> str:
    """The name a sealed PSI output is bound to (its target's name: renames keep it)."""
    return f"psi-output/{path.name}"


def read_sealed_table(path: str | Path, vault: Vault) -> pa.Table:
    """An output written with ``TableWriter(..., vault=vault)``, opened and decoded."""
    path = Path(path)
    data = vault.sealed_scratch(path, sealed_name(path)).read_bytes()
    if file_format(path) == "csv":
        return pacsv.read_csv(pa.BufferReader(data))
    return pq.read_table(pa.BufferReader(data))


class TableWriter:
    """Append record batches to a CSV or Parquet file that appears only on :meth:`commit`.

    With ``vault`` the file is sealed as it is written (chunked AEAD, never in
    clear on disk); read it back with :func:`read_sealed_table`.
    """

    def __init__(self, path: str | Path, schema: pa.Schema, vault: Vault | None = None) -> None:
        self.path = Path(path)
        self.format = file_format(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _tmp_path(self.path)
        self.rows = 0
        self._sink: SealedWriter | None = None
        target: Path | SealedWriter = self.tmp
        if vault is not None:
            target = self._sink = vault.sealed_scratch(self.tmp, sealed_name(self.path)).writer()
        self._writer: pacsv.CSVWriter | pq.ParquetWriter
        if self.format == "csv":
            self._writer = pacsv.CSVWriter(target, schema)
        else:
            self._writer = pq.ParquetWriter(target, schema)

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        self._writer.write_table(data)
        self.rows += data.num_rows

    def finish(self) -> None:
        """Close the temporary file and flush it to disk (phase one of a commit)."""
        self._writer.close()
        if self._sink is not None:
            self._sink.close()
        with open(self.tmp, "rb") as handle:
            os.fsync(handle.fileno())

    def publish(self) -> Path:
        """Move the finished temporary file into place (phase two)."""
        os.replace(self.tmp, self.path)
        return self.path

    def commit(self) -> Path:
        """Close the file and move it into place."""
        self.finish()
        return self.publish()

    def abort(self) -> None:
        """Close and delete the temporary file; the target is left untouched."""
        with contextlib.suppress(Exception):
            self._writer.close()
        if self._sink is not None:
            self._sink.abandon()
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
