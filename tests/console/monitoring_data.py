"""An in-loan and a post-loan run as the bank node keeps them after its jobs finished: a
Succeeded job in the node's database and the step's report.json and tables in its folder.

The real jobs need four parties with a year of monthly feeds (``meshmpc credit monitor``,
tested in tests/apps); the console test needs only what they leave behind."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from meshmpc.platform.db import NodeDatabase
from meshmpc.platform.models import Job

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
INLOAN = {"loans": 3, "months": 3, "unscored": 0,
          "by_month": [{"month": m, "grade_drop": m, "score_drop": 1, "new_list_hit": 0,
                        "keep": 9, "reduce": 1, "freeze": 0} for m in (1, 2, 3)],
          "score_psi": [{"month": m, "psi": 0.05 * m} for m in (1, 2, 3)],
          "feature_psi": {"gov.tax_paid": [0.0, 0.02, 0.3]}}
POSTLOAN = {"as_of": 9, "watch": {"red": 1, "orange": 0, "yellow": 2},
            "collection": {"loans": 1, "expected_loss": 100.0},
            "roll_rates": [{"from": b, **{c: float(b == c) for c in BUCKETS}} for b in BUCKETS],
            "vintages": {"2025-01": [0.0, 0.1, 0.2]}}


def _run(node_dir: Path, job_id: str, name: str, component: str, report: dict,
         tables: dict[str, pa.Table]) -> None:
    spec = (f"name: {name}\nparties:\n  bank: {{data: b.parquet, key: credit_code}}\n"
            f"steps:\n  - {{id: watch, component: {component}}}\n")
    db = NodeDatabase(f"sqlite:///{node_dir / 'node.db'}")
    with db.session() as s:
        s.add(Job(id=job_id, name=name, initiator="bank", spec=spec, state="Succeeded",
                  submitted_by="ana", finished=1.78e9))
    folder = node_dir / "jobs" / job_id / "out" / name / "bank" / "watch"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report))
    for table_name, table in tables.items():
        pq.write_table(table, folder / f"{table_name}.parquet")


def write_monitoring_runs(node_dir: Path) -> None:
    """Job ``mon-in`` (credit.inloan, 2 alerts) and ``mon-post`` (credit.postloan)."""
    _run(node_dir, "mon-in", "inloan", "credit.inloan", INLOAN, {"alerts": pa.table({
        "credit_code": ["K-A", "K-B"], "month": [2, 3], "score": [500.0, 480.0],
        "decision": ["reduce", "freeze"]})})
    _run(node_dir, "mon-post", "postloan", "credit.postloan", POSTLOAN, {"watch_list": pa.table({
        "credit_code": ["K-C"], "pd_3m": [0.4], "level": ["red"]})})
