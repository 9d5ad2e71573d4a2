"""The console's read endpoints (platform/api_console, entry point console_reads): a job's
file for "submit again", and the evaluation report behind a model version's plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from meshmpc.platform.api import create_app
from meshmpc.platform.api_console import evaluation_step
from meshmpc.platform.models import Job, ModelVersion
from meshmpc.platform.node import Node, init_node

PASSWORD = "correct horse battery"
SPEC = """name: scoring
parties:
  bank: {data: bank.parquet, key: credit_code, label: default_12m}
  gov: {data: "dataset:registry", key: credit_code}
steps:
  - {id: align, component: psi.align}
  - {id: lr, component: ml.logistic, after: [align]}
  - {id: eval, component: ml.evaluate, after: [lr]}
"""
GAINS = [{"decile": k, "rows": 10, "bads": 10 - k, "bad_rate": (10 - k) / 10,
          "cum_bad_share": 0.1 * k, "lift": 1.0, "cum_lift": 1.0, "ks": 0.05 * k}
         for k in range(1, 11)]


@pytest.fixture
def bank(tmp_path: Path) -> tuple[Node, TestClient]:
    config, _ = init_node(tmp_path / "bank", "bank", "root", PASSWORD, password_memory_mb=8)
    node = Node(config)
    node.accounts.create_user("ana", PASSWORD, ["analyst"])
    client = TestClient(create_app(node, heartbeats=False))
    r = client.post("/api/v1/auth/login", json={"name": "ana", "password": PASSWORD,
                                                 "kind": "token"})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    with node.db.session() as s:
        s.add(Job(id="j1", name="scoring", initiator="bank", spec=SPEC, state="Succeeded",
                  purpose="credit_approval", submitted_by="ana"))
        s.add(ModelVersion(id=7, name="scoring.lr.logistic", version=1, job_id="j1", step="lr"))
        s.add(ModelVersion(id=8, name="uploaded", version=1))
    return node, client


def test_spec_is_the_submitted_file(bank):
    _, client = bank
    r = client.get("/api/v1/jobs/j1/spec")
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("id", "spec", "purpose")} == {
        "id": "j1", "spec": SPEC, "purpose": "credit_approval"}
    missing = client.get("/api/v1/jobs/nope/spec")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    anonymous = TestClient(client.app).get("/api/v1/jobs/j1/spec")
    assert anonymous.status_code == 401


def test_evaluation_is_the_report_of_the_jobs_evaluate_step(bank):
    node, client = bank
    r = client.get("/api/v1/models/7/evaluation")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_evaluation"
    assert "eval" in r.json()["error"]["message"] and "j1" in r.json()["error"]["message"]
    folder = node.config.directory / "jobs" / "j1" / "out" / "scoring" / "bank" / "eval"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"auc": 0.8, "ks": 0.5, "gains": GAINS}))
    r = client.get("/api/v1/models/7/evaluation")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["step"], body["party"], body["job_id"]) == ("eval", "bank", "j1")
    assert body["report"]["gains"] == GAINS and body["report"]["auc"] == 0.8
    r = client.get("/api/v1/models/8/evaluation")
    assert r.status_code == 404 and "not made by a job" in r.json()["error"]["message"]
    assert client.get("/api/v1/models/99/evaluation").status_code == 404


def test_evaluation_step_is_the_first_after_the_model():
    steps = [{"id": "lr", "component": "ml.logistic"}, {"id": "e1", "component": "ml.evaluate"},
             {"id": "card", "component": "ml.scorecard"},
             {"id": "e2", "component": "ml.evaluate"}]
    assert evaluation_step(steps, "lr") == "e1"
    assert evaluation_step(steps, "card") == "e2"
    assert evaluation_step(steps, None) == "e2"
    assert evaluation_step(steps[:1], "lr") is None
