"""The node API end to end in one process: roles, sessions, datasets, grants, approvals, audit."""

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from meshmpc.platform.grants import GrantError
from meshmpc.platform.models import Job, JobParty

from .conftest import PASSWORD

JOB = """
name: scorecard
parties:
  bank: {data: data/bank.parquet, key: credit_code, label: default_12m}
  gov: {data: "dataset:registry", key: credit_code}
steps:
  - {id: align, component: psi.align}
  - {id: bins, component: ml.binning, after: [align]}
"""


def _register(gov, tmp_path):
    path = tmp_path / "registry.parquet"
    pq.write_table(pa.table({"credit_code": ["a", "b", "c"], "reg_capital": [1.0, 2.0, 3.0]}),
                   path)
    r = gov.as_user("ana").post("/api/v1/datasets", json={"name": "registry", "uri": str(path)})
    assert r.status_code == 201, r.text
    return r.json()


def _job_from_bank(gov):
    """A job the bank's node sent to gov (what orchestration stores on arrival)."""
    with gov.node.db.session() as s:
        s.add(Job(id="j1", name="scorecard", initiator="bank", spec=JOB, submitted_by="bank:ana",
                  purpose="credit_approval",
                  parties=[JobParty(party="bank", approval="approved"),
                           JobParty(party="gov")]))


def test_health_is_anonymous_and_writes_are_not(gov_node):
    client = TestClient(gov_node.app)
    assert client.get("/api/v1/health").json()["party"] == "gov"
    r = client.post("/api/v1/grants", json={"dataset": "x", "grantee": "bank"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_role_without_right_refused_with_reason(gov_node):
    r = gov_node.as_user("ana").post("/api/v1/grants", json={"dataset": "x", "grantee": "bank"})
    assert r.status_code == 403
    assert "may not grants.write" in r.json()["error"]["message"]
    assert gov_node.as_user("root").get("/api/v1/audit").status_code == 403  # admin != auditor


def test_privileged_roles_need_totp_and_are_separated(gov_node):
    client = TestClient(gov_node.app)
    r = client.post("/api/v1/auth/login", json={"name": "sec", "password": PASSWORD,
                                                "kind": "token"})
    assert r.status_code == 401
    r = gov_node.as_user("root").post("/api/v1/users", json={
        "name": "both", "password": PASSWORD, "roles": ["admin", "auditor"]})
    assert r.status_code == 400 and "different accounts" in r.json()["error"]["message"]


def test_lockout_after_repeated_failures(gov_node):
    client = TestClient(gov_node.app)
    for _ in range(5):
        client.post("/api/v1/auth/login", json={"name": "ana", "password": "wrong password!"})
    r = client.post("/api/v1/auth/login", json={"name": "ana", "password": PASSWORD})
    assert r.status_code == 401 and "locked" in r.json()["error"]["message"]


def test_browser_session_needs_csrf_for_writes(gov_node, tmp_path):
    client = TestClient(gov_node.app)
    r = client.post("/api/v1/auth/login", json={"name": "ana", "password": PASSWORD})
    csrf = r.json()["csrf"]
    assert client.get("/api/v1/datasets").status_code == 200
    body = {"name": "d1", "uri": str(tmp_path / "missing.csv")}
    r = client.post("/api/v1/datasets", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = client.post("/api/v1/datasets", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400 and "d1" in r.json()["error"]["message"]  # file missing


def test_dataset_registered_with_columns_and_rows(gov_node, tmp_path):
    dataset = _register(gov_node, tmp_path)
    assert dataset["row_count"] == 3
    assert [c["name"] for c in dataset["columns"]] == ["credit_code", "reg_capital"]
    listing = gov_node.as_user("appr").get("/api/v1/datasets?limit=1").json()
    assert listing["total"] == 1 and listing["limit"] == 1


def test_job_refused_without_grant_then_approved_with_one(gov_node, tmp_path):
    _register(gov_node, tmp_path)
    _job_from_bank(gov_node)
    approver = gov_node.as_user("appr")
    r = approver.post("/api/v1/jobs/j1/approve", json={})
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert "registry" in message and "bank has no grant" in message
    r = gov_node.as_user("sec").post("/api/v1/grants", json={
        "dataset": "registry", "grantee": "bank", "components": ["psi.align", "ml.binning"],
        "purposes": ["credit_approval"], "expires": time.time() + 3600})
    assert r.status_code == 201, r.text
    r = approver.post("/api/v1/jobs/j1/approve", json={"reason": "checked"})
    assert r.status_code == 200
    gov_party = [p for p in r.json()["parties"] if p["party"] == "gov"][0]
    assert gov_party["approval"] == "approved" and gov_party["approver"] == "appr"


def test_grant_limits_components(gov_node, tmp_path):
    _register(gov_node, tmp_path)
    _job_from_bank(gov_node)
    gov_node.as_user("sec").post("/api/v1/grants", json={
        "dataset": "registry", "grantee": "bank", "components": ["psi.align"]})
    r = gov_node.as_user("appr").post("/api/v1/jobs/j1/approve", json={})
    assert r.status_code == 403 and "ml.binning" in r.json()["error"]["message"]


def test_rejection_recorded_with_reason(gov_node, tmp_path):
    _job_from_bank(gov_node)
    r = gov_node.as_user("appr").post("/api/v1/jobs/j1/reject", json={"reason": "no purpose"})
    assert r.json()["state"] == "Rejected" and "no purpose" in r.json()["error"]


def test_maker_checker_on_own_submission(gov_node):
    gov_node.node.accounts.set_roles("ana", ["analyst", "approver"])
    gov_node.tokens.clear()
    from .conftest import otp_of

    gov_node.otps["ana"] = otp_of(gov_node.node.accounts.totp_uri("ana"))
    with gov_node.node.db.session() as s:
        s.add(Job(id="j2", name="own", initiator="bank", spec=JOB, submitted_by="ana",
                  parties=[JobParty(party="bank", approval="approved"), JobParty(party="gov")]))
    r = gov_node.as_user("ana").post("/api/v1/jobs/j2/approve", json={})
    assert r.status_code == 403 and "another approver" in r.json()["error"]["message"]


def test_lookup_cap_stops_a_sweep(gov_node, tmp_path):
    _register(gov_node, tmp_path)
    grant = gov_node.node.grants.create("registry", "bank", "sec", max_lookups_per_day=1000,
                                        components=["pir.query"])
    assert grant
    admitted = 0
    with pytest.raises(GrantError, match="capped"):
        for _ in range(100):  # a sweep of 10^5 keys in batches of 1,000
            admitted += gov_node.node.grants.consume_lookups("bank", "registry", 1000)
    assert admitted == 1000


def test_audit_records_writes_and_verifies(gov_node, tmp_path):
    _register(gov_node, tmp_path)
    auditor = gov_node.as_user("aud")
    entries = auditor.get("/api/v1/audit?kind=dataset.register").json()["items"]
    assert entries and entries[0]["actor"] == "ana"
    report = auditor.get("/api/v1/audit/verify").json()
    assert report["ok"] and report["entries"] >= 3
    dump = str(auditor.get("/api/v1/audit?limit=500").json())
    assert PASSWORD not in dump


def test_openapi_served(gov_node):
    spec = TestClient(gov_node.app).get("/api/v1/openapi.json").json()
    assert "/api/v1/jobs/{job_id}/approve" in spec["paths"]


def test_head_revision_constant_matches_migrations(gov_node):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from meshmpc.platform.db import HEAD_REVISION, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
    assert gov_node.node.db.current_revision() == HEAD_REVISION
