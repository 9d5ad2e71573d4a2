"""The credit app's monitoring endpoints on a node (/api/v1/monitoring, read-only): the
in-loan and post-loan steps of finished jobs, their alert rows and their HTML reports."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from meshmpc.platform.api import create_app
from meshmpc.platform.models import Job
from meshmpc.platform.node import Node, init_node

PASSWORD = "correct horse battery"
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


def _job(node: Node, job_id: str, name: str, component: str, state: str = "Succeeded") -> Path:
    spec = (f"name: {name}\nparties:\n  bank: {{data: b.parquet, key: credit_code}}\n"
            f"steps:\n  - {{id: watch, component: {component}}}\n")
    with node.db.session() as s:
        s.add(Job(id=job_id, name=name, initiator="bank", spec=spec, state=state,
                  submitted_by="ana", finished=1.0))
    folder = node.config.directory / "jobs" / job_id / "out" / name / "bank" / "watch"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def bank(tmp_path: Path) -> tuple[Node, TestClient]:
    config, _ = init_node(tmp_path / "bank", "bank", "root", PASSWORD, password_memory_mb=8)
    node = Node(config)
    node.accounts.create_user("ana", PASSWORD, ["analyst"])
    client = TestClient(create_app(node, heartbeats=False))
    r = client.post("/api/v1/auth/login", json={"name": "ana", "password": PASSWORD,
                                                 "kind": "token"})
    client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    inloan = _job(node, "m1", "inloan", "credit.inloan")
    (inloan / "report.json").write_text(json.dumps(INLOAN))
    pq.write_table(pa.table({"credit_code": ["a", "b"], "month": [2, 3], "score": [500.0, 480.0],
                             "decision": ["reduce", "freeze"]}), inloan / "alerts.parquet")
    post = _job(node, "p1", "postloan", "credit.postloan")
    (post / "report.json").write_text(json.dumps(POSTLOAN))
    pq.write_table(pa.table({"credit_code": ["a"], "pd_3m": [0.4], "level": ["red"]}),
                   post / "watch_list.parquet")
    failed = _job(node, "f1", "inloan", "credit.inloan", state="Failed")
    (failed / "report.json").write_text(json.dumps(INLOAN))
    return node, client


def test_list_has_each_finished_monitoring_step(bank):
    _, client = bank
    r = client.get("/api/v1/monitoring")
    assert r.status_code == 200, r.text
    items = {i["job_id"]: i for i in r.json()["items"]}
    assert set(items) == {"m1", "p1"}  # the failed job's leftovers are not listed
    assert items["m1"]["kind"] == "inloan" and items["m1"]["tables"] == {"alerts": 2}
    assert items["m1"]["figures"]["loans"] == 3
    assert items["p1"]["tables"] == {"watch_list": 1, "collection_list": 0}
    assert items["p1"]["figures"]["watch"] == {"red": 1, "orange": 0, "yellow": 2}
    assert items["p1"]["html"] == "/api/v1/monitoring/p1/watch/report.html"


def test_detail_has_the_alert_rows(bank):
    _, client = bank
    r = client.get("/api/v1/monitoring/m1/watch")
    assert r.status_code == 200, r.text
    assert [row["credit_code"] for row in r.json()["rows"]["alerts"]] == ["a", "b"]
    assert r.json()["report"]["score_psi"][2]["psi"] == pytest.approx(0.15)
    missing = client.get("/api/v1/monitoring/m1/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    failed = client.get("/api/v1/monitoring/f1/watch")
    assert failed.status_code == 404 and "Failed" in failed.json()["error"]["message"]


def test_html_report_is_rendered_once_bilingual(bank):
    node, client = bank
    r = client.get("/api/v1/monitoring/p1/watch/report.html")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "迁徙率" in r.text and "data:image/png;base64," in r.text
    kept = node.config.directory / "jobs" / "p1" / "reports" / "watch.html"
    assert kept.read_text(encoding="utf-8") == r.text
    assert not (node.config.directory / "jobs" / "p1" / "out" / "postloan" / "bank" / "watch"
                / "report.html").exists()
    assert "评分漂移" in client.get("/api/v1/monitoring/m1/watch/report.html").text


def test_a_report_lacking_fields_is_named(bank):
    node, client = bank
    folder = _job(node, "b1", "inloan", "credit.inloan")
    (folder / "report.json").write_text(json.dumps({"loans": 1}))
    r = client.get("/api/v1/monitoring/b1/watch/report.html")
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_report"
    assert "report.json" in r.json()["error"]["message"]
