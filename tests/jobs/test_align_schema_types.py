"""``psi.align`` on CSV inputs types the columns by the schema beside the file.

Found walking docs/deploy.md step 8: a job on the CSV files of step 5 (with
``bank.schema.toml`` beside ``bank.csv``) failed in ``ml.binning`` with "the
label is string": the pairwise PSI read every CSV column as text and ignored
the schema. Columns keep their text without a schema (codes stay codes).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from meshmpc.jobs.local import run_job_in_memory

SCHEMA = ('[dataset]\nname = "bank"\nkey = ["code"]\n\n[[columns]]\nname = "code"\n'
          'type = "string"\n\n[[columns]]\nname = "zip"\ntype = "string"\n\n'
          '[[columns]]\nname = "amount"\ntype = "float"\n\n[[columns]]\nname = "label"\n'
          'type = "int"\n')


def _align(tmp_path: Path) -> pa.Table:
    (tmp_path / "bank.csv").write_text("code,zip,amount,label\n" + "".join(
        f"c{i:03d},0{i:04d},{i}.5,{i % 2}\n" for i in range(40)))
    (tmp_path / "gov.csv").write_text("code,y\n" + "".join(f"c{i:03d},{i}\n"
                                                           for i in range(20, 60)))
    raw = {"name": "al", "parties": {"bank": {"data": "bank.csv", "key": "code",
                                              "label": "label"},
                                     "gov": {"data": "gov.csv", "key": "code"}},
           "steps": [{"id": "align", "component": "psi.align", "params": {}}]}
    asyncio.run(run_job_in_memory(raw, tmp_path / "out", base_dir=tmp_path))
    return pq.read_table(tmp_path / "out" / "al" / "bank" / "align" / "aligned.parquet")


def test_schema_beside_the_csv_types_the_aligned_columns(tmp_path: Path) -> None:
    (tmp_path / "bank.schema.toml").write_text(SCHEMA)
    table = _align(tmp_path)
    assert table.num_rows == 20
    assert table.schema.field("label").type == pa.int64()
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("zip").type == pa.string()
    assert sorted(table.column("zip").to_pylist())[0] == "00020"
    assert sorted(table.column("label").to_pylist()) == [0] * 10 + [1] * 10


def test_without_a_schema_csv_columns_stay_text(tmp_path: Path) -> None:
    table = _align(tmp_path)
    assert table.schema.field("label").type == pa.string()
    assert sorted(table.column("zip").to_pylist())[0] == "00020"
