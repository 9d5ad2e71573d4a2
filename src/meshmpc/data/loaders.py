"""Read a party's local data in chunks: CSV, Parquet, SQLite and other databases.

Every source is read as a stream of Arrow record batches of bounded size, so
a ten-million-row file never has to fit in memory at once:

* ``*.csv`` / ``*.tsv`` (optionally ``.gz``): pyarrow's streaming CSV reader;
* ``*.parquet`` / ``*.pq``: pyarrow, one row group (or ``batch_rows``) at a time;
* ``sqlite:///relative.db?table=NAME``, ``sqlite:////absolute.db?query=SELECT...``
  (SQLAlchemy's URL convention), or a path ending in ``.db`` / ``.sqlite`` /
  ``.sqlite3`` with ``table=``: the standard library's ``sqlite3``, opened
  read-only, ``fetchmany`` in chunks;
* any other ``dialect://...`` URL: SQLAlchemy when it is installed (optional);
* an open DB-API 2.0 connection object with ``query=``.

Errors name the source and, where Arrow reports it, the column.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from meshmpc.data.errors import DataReadError
from meshmpc.data.schema import Schema, load_schema

BATCH_ROWS = 65_536
CSV_BLOCK_BYTES = 8 << 20
PARQUET_BUFFER = 8 << 20
NULL_TEXT = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Source = str | Path | Any


def source_kind(source: Source) -> str:
    """``csv``, ``parquet``, ``sqlite``, ``sqlalchemy`` or ``dbapi`` for a source."""
    if not isinstance(source, str | Path):
        if hasattr(source, "cursor"):
            return "dbapi"
        raise DataReadError(source, "not a path, URL or DB-API connection")
    text = str(source)
    if "://" in text:
        return "sqlite" if text.startswith("sqlite://") else "sqlalchemy"
    name = Path(text).name.lower().removesuffix(".gz")
    for suffix, kind in ((".csv", "csv"), (".tsv", "csv"), (".parquet", "parquet"),
                         (".pq", "parquet"), (".db", "sqlite"), (".sqlite", "sqlite"),
                         (".sqlite3", "sqlite")):
        if name.endswith(suffix):
            return kind
    raise DataReadError(text, "unknown file type; use .csv, .tsv, .parquet or a sqlite:/// URL")


def iter_batches(
    source: Source,
    columns: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    *,
    table: str | None = None,
    query: str | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
    encoding: str | None = None,
    schema: Schema | str | Path | None = None,
    schema_beside: bool = True,
    delimiter: str | None = None,
    text: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Yield the source's rows as record batches of at most ``batch_rows`` rows.

    CSV text has no types, so CSV columns take their types from ``schema``,
    or by default from ``<name>.schema.toml`` beside the file when there is one
    (``schema_beside=False`` skips that; without a schema Arrow infers the types,
    and a numeric-looking credit code becomes an integer). ``column_types``
    overrides single columns (e.g. ``pa.binary()`` to read raw text for
    validation); ``encoding`` overrides the schema's. ``delimiter`` defaults to
    a tab for ``.tsv`` and a comma otherwise. ``text=True`` reads every CSV
    column as the text written in the file (no type inference, no null
    markers), for tools that pass values through unchanged; ``column_types``
    still override single columns.

    A CSV file with a header and no rows yields one empty batch, so callers
    still see its columns.
    """
    kind = source_kind(source)
    if kind == "csv":
        spec = _csv_schema(Path(source), schema, schema_beside)
        types = {c.name: c.arrow_type for c in spec.columns} if spec and not text else {}
        types.update(column_types or {})
        charset = encoding or (spec.encoding if spec else "utf-8")
        options = CsvOptions(charset, delimiter or _default_delimiter(Path(source)), text)
        yield from _csv_batches(Path(source), columns, batch_rows, types, options)
    elif kind == "parquet":
        yield from _parquet_batches(Path(source), columns, batch_rows)
    else:
        yield from _sql_batches(source, kind, columns, batch_rows, table, query)


def _csv_schema(path: Path, schema: Schema | str | Path | None, beside_ok: bool) -> Schema | None:
    if isinstance(schema, Schema):
        return schema
    if schema is not None:
        return load_schema(schema)
    beside = path.with_name(path.name.split(".")[0] + ".schema.toml")
    return load_schema(beside) if beside_ok and beside.is_file() else None


def load_table(source: Source, columns: Sequence[str] | None = None, **options: Any) -> pa.Table:
    """Read a whole source into one Arrow table (same options as :func:`iter_batches`)."""
    batches = list(iter_batches(source, columns, **options))
    if not batches:
        raise DataReadError(source, "has no rows")
    return pa.Table.from_batches(batches)


def prefetch(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Read ahead on a thread: decoding the next batches overlaps checking this one.

    At most ``depth`` batches wait in the queue (bounded memory). Errors of the
    reader are re-raised here; stopping early stops the reader.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(("batch", batch), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(("error", exc))

    reader = threading.Thread(target=produce, name="data-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataReadError(path, "file is empty (not even a header line)")


@dataclass(frozen=True)
class CsvOptions:
    """How a CSV file is decoded: text encoding, delimiter, all columns as text."""

    encoding: str = "utf-8"
    delimiter: str = ","
    text: bool = False


def _default_delimiter(path: Path) -> str:
    return "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","


def _open_csv(path: Path, columns: Sequence[str] | None,
              column_types: Mapping[str, pa.DataType] | None,
              options: CsvOptions) -> pacsv.CSVStreamingReader:
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, encoding=options.encoding)
    parse = pacsv.ParseOptions(delimiter=options.delimiter, newlines_in_values=False)
    types = dict(column_types or {})
    if options.text:
        header = pacsv.open_csv(path, read_options=read, parse_options=parse)
        types = {name: pa.string() for name in header.schema.names} | types
    convert = pacsv.ConvertOptions(
        column_types=types,
        include_columns=list(columns) if columns else None,
        null_values=[] if options.text else NULL_TEXT,
        strings_can_be_null=not options.text,
    )
    return pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)


def _csv_batches(
    path: Path,
    columns: Sequence[str] | None,
    batch_rows: int,
    column_types: Mapping[str, pa.DataType] | None,
    options: CsvOptions,
) -> Iterator[pa.RecordBatch]:
    _check_exists(path)
    if len(options.delimiter) != 1:
        raise DataReadError(path, f"the delimiter must be one character, got "
                                  f"{options.delimiter!r}")
    try:
        reader = _open_csv(path, columns, column_types, options)
        rows = 0
        for batch in reader:
            _check_line_breaks(path, batch, rows)
            rows += batch.num_rows
            yield from _split(batch, batch_rows)
        if rows == 0:  # header only: still tell the caller which columns there are
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError) as exc:
        raise DataReadError(path, _csv_problem(path, exc, options.encoding)) from None


def _check_line_breaks(path: Path, batch: pa.RecordBatch, first: int) -> None:
    """A value running over a line end means an unclosed quote: rows were merged."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_binary(column.type)):
            continue
        data = column.buffers()[2]
        if data is None or b"\n" not in data.to_pybytes():  # memchr over the bytes: the
            continue  # exact kernel below cost ~0.1 s per 10^6 rows and column
        hits = pc.match_substring(column.cast(pa.binary()), b"\n").fill_null(False)
        if pc.any(hits).as_py():
            row = first + int(pc.index(hits, True).as_py()) + 1
            raise DataReadError(path, f"row {row} has a value that runs over a line end, "
                                      f"most likely a quote (\") that is never closed; close "
                                      f"it or remove it (later rows were merged into it)",
                                name)


def _csv_problem(path: Path, exc: Exception, encoding: str) -> str:
    """Explain a CSV failure; for undecodable text, find the first bad line."""
    message = str(exc)
    if "Empty CSV" in message:
        return "file is empty (not even a header line)"
    if isinstance(exc, LookupError):
        return f"unknown text encoding {encoding!r}"
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in message or "utf-8" in message.lower():
        line = first_undecodable_line(path, encoding)
        where = f" at line {line}" if line else ""
        return (f"text is not valid {encoding}{where}; re-encode the file as UTF-8 or "
                f"give its encoding (--encoding gb18030, or encoding = \"gb18030\" in the "
                f"schema)")
    return message


def first_undecodable_line(path: Path, encoding: str = "utf-8") -> int | None:
    """1-based number of the first line that does not decode (error path only)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return None


def _split(batch: pa.RecordBatch, batch_rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, batch_rows):
        yield batch.slice(start, batch_rows)


def _parquet_batches(
    path: Path, columns: Sequence[str] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    _check_exists(path)
    try:
        # no pre-buffering: pyarrow would otherwise hold many row groups at once
        handle = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
        names = handle.schema_arrow.names
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # damaged footer/metadata
        raise DataReadError(path, f"not a readable Parquet file: {exc}") from None
    if columns:
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataReadError(path, f"columns not in the file: {missing}")
    with handle:
        rows = 0
        for batch in _parquet_reads(path, handle, batch_rows, columns):
            rows += batch.num_rows
            yield batch
        if rows == 0:  # no rows: still tell the caller which columns there are
            schema = handle.schema_arrow
            if columns:
                schema = pa.schema([schema.field(c) for c in columns])
            yield pa.RecordBatch.from_pylist([], schema=schema)


def _parquet_reads(path: Path, handle: pq.ParquetFile, batch_rows: int,
                   columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    """The file's batches; a damaged row group is a DataReadError naming the file."""
    try:
        yield from handle.iter_batches(batch_size=batch_rows, columns=columns)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise DataReadError(path, f"damaged Parquet data: {exc}") from None


def _sql_batches(
    source: Source,
    kind: str,
    columns: Sequence[str] | None,
    batch_rows: int,
    table: str | None,
    query: str | None,
) -> Iterator[pa.RecordBatch]:
    connection, table, query, owned = _connect(source, kind, table, query)
    sql = query or _select(table, columns, source)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        names = [d[0] for d in cursor.description]
        seen = 0
        while rows := cursor.fetchmany(batch_rows):
            arrays = [pa.array(values) for values in zip(*rows, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, names=names)
            seen += batch.num_rows
            yield batch.select(list(columns)) if columns and query else batch
        if seen == 0:  # an empty table: still tell the caller which columns there are
            empty = pa.RecordBatch.from_arrays([pa.array([], pa.null()) for _ in names],
                                               names=names)
            yield empty.select(list(columns)) if columns and query else empty
    except (sqlite3.Error, pa.ArrowException, KeyError) as exc:
        raise DataReadError(_display(source), f"database read failed: {exc}") from None
    finally:
        if owned:
            connection.close()


def _select(table: str | None, columns: Sequence[str] | None, source: Source) -> str:
    if not table:
        raise DataReadError(_display(source), "name a table (?table=NAME) or a query (?query=)")
    for name in [table, *(columns or [])]:
        if not _IDENTIFIER.match(name):
            raise DataReadError(_display(source), f"not a plain SQL identifier: {name!r}")
    wanted = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return f'SELECT {wanted} FROM "{table}"'  # noqa: S608 - identifiers checked above


def _connect(
    source: Source, kind: str, table: str | None, query: str | None
) -> tuple[Any, str | None, str | None, bool]:
    """Open the connection; returns it, the table, the query and whether we own it."""
    if kind == "dbapi":
        return source, table, query, False
    text = str(source)
    if "://" not in text:
        path, params = Path(text), {}
    else:
        parts = urlsplit(text)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = Path(unquote(parts.path)[1:])  # sqlite:///rel.db, sqlite:////abs/path.db
    table = table or params.get("table")
    query = query or params.get("query")
    if kind == "sqlite":
        if not path.is_file():
            raise DataReadError(text, "database file not found")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True), table, query, True
    return _sqlalchemy_connection(text.split("?")[0]), table, query, True


def _sqlalchemy_connection(url: str) -> Any:
    try:
        import sqlalchemy
    except ImportError:
        raise DataReadError(url, "this database URL needs SQLAlchemy (pip install "
                                 "sqlalchemy) or pass an open DB-API connection") from None
    return sqlalchemy.create_engine(url).raw_connection()


def _display(source: Source) -> str:
    return str(source) if isinstance(source, str | Path) else type(source).__name__
