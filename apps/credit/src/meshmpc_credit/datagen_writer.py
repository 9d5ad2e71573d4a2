"""Stream generated row groups to Parquet or CSV, with the schema file beside them."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from meshmpc.data.schema import Column, Schema, write_schema
from meshmpc_credit.datagen_frame import Frame
from meshmpc_credit.datagen_monthly import key_column

DESCRIPTIONS = {
    "bank": "bank: loan applications (8 features) and 12-month default labels",
    "gov": "government: registry, tax, invoices, social insurance, justice (120 features)",
    "fin": "internet finance: platform borrowing, repayment, multi-lending (64 features)",
    "telco": "telecom: tenure, stability, calls, traffic, payments (29 features)",
}


class BackgroundWrites:
    """One writer thread: encoding and compression overlap with generating the next group.

    Arrow releases the GIL while it encodes, so on two cores the writes cost
    little wall time. At most ``depth`` writes are pending (bounded memory);
    one worker keeps each file's row groups in order.
    """

    def __init__(self, depth: int = 6) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datagen-write")
        self.pending: deque[Future[None]] = deque()
        self.depth = depth

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        while len(self.pending) >= self.depth:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(fn, *args))

    def drain(self) -> None:
        """Wait for every pending write (re-raising its error)."""
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        self.drain()
        self.pool.shutdown()


class TableWriter:
    """Writes one dataset (e.g. ``gov`` or ``gov.risklist``) one row group at a time."""

    def __init__(self, out_dir: Path, name: str, fmt: str, party: str,
                 background: BackgroundWrites) -> None:
        self.background = background
        self.out_dir = out_dir
        self.name = name
        self.fmt = fmt
        self.party = party
        self.path = out_dir / f"{name}.{fmt}"
        self.schema: Schema | None = None
        self.writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self.arrow: pa.Schema | None = None
        self.rows = 0

    def write(self, frame: Frame, keys: pa.Array | None = None) -> None:
        """Append ``frame`` (with ``keys`` as a leading ``credit_code`` column if given)."""
        columns = list(frame.columns)
        table = frame.table()
        if keys is not None:
            columns.insert(0, key_column())
            table = table.add_column(0, "credit_code", keys)
        if self.writer is None:
            self._open(columns, table.schema)
        assert self.writer is not None and self.arrow is not None
        table = table.cast(self.arrow)
        self.background.submit(self._write, self.writer, table)
        self.rows += table.num_rows

    @staticmethod
    def _write(writer: pq.ParquetWriter | pacsv.CSVWriter, table: pa.Table) -> None:
        if isinstance(writer, pq.ParquetWriter):
            writer.write_table(table, row_group_size=max(table.num_rows, 1))
        else:
            writer.write_table(table)

    def _open(self, columns: list[Column], arrow: pa.Schema) -> None:
        self.schema = Schema(name=self.name, columns=tuple(columns), key=("credit_code",)
                             if not self.name.endswith(".monthly") else ("credit_code", "month"),
                             party=self.party, description=DESCRIPTIONS.get(self.name, ""))
        self.arrow = arrow
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.fmt == "parquet":
            self.writer = pq.ParquetWriter(self.path, arrow, compression="zstd")
        else:
            self.writer = pacsv.CSVWriter(self.path, arrow)

    def close(self) -> dict[str, Path]:
        """Finish the file; return ``{name: data path, name_schema: schema path}``."""
        if self.writer is None or self.schema is None:
            return {}
        self.background.drain()
        self.writer.close()
        key = self.name.replace(".", "_")
        schema_path = write_schema(self.schema, self.out_dir / f"{self.name}.schema.toml")
        return {key: self.path, f"{key}_schema": schema_path}
