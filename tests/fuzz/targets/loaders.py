"""The CSV / TSV / Parquet / SQLite loaders: the input's bytes written to a file and read
(first byte: which format and options). Only DataError subclasses may come out."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshmpc.data.loaders import iter_batches
from meshmpc.errors import DataError

FOLDER = Path(tempfile.mkdtemp(prefix="fuzz-loaders-"))

# (file name, source suffix, iter_batches options)
KINDS: list[tuple[str, str, dict[str, Any]]] = [
    ("in.csv", "", {}),
    ("in.tsv", "", {}),
    ("in.csv", "", {"text": True}),
    ("in.csv", "", {"encoding": "gb18030", "columns": ["credit_code"]}),
    ("in.csv", "", {"column_types": {"credit_code": pa.binary(), "income": pa.float64()}}),
    ("in.parquet", "", {}),
    ("in.parquet", "", {"columns": ["credit_code"]}),
    ("in.db", "?table=firms", {}),
    ("in.db", "?query=SELECT * FROM firms", {"columns": ["credit_code"]}),
]


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    if not data:
        return
    name, suffix, options = KINDS[data[0] % len(KINDS)]
    path = FOLDER / name
    path.write_bytes(data[1:])
    source = f"sqlite:///{path}{suffix}" if name.endswith(".db") else path
    rows = 0
    try:
        for batch in iter_batches(source, batch_rows=7, schema_beside=False, **options):
            assert batch.num_rows <= 7, "batch larger than asked"
            rows += batch.num_rows
    except DataError:
        return
    assert rows <= max(len(data), 1) * 8 or name.endswith(".parquet"), "rows out of nothing"
