"""The credit app's strategy endpoints on a node (entry point meshmpc.node_routers):
propose, validate with rule and field, simulate, publish and roll back with maker-checker."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from fastapi.testclient import TestClient
from meshmpc_credit.strategy.context import build_context
from meshmpc_credit.strategy.document import DEFAULT_STRATEGY

from meshmpc.platform.api import create_app
from meshmpc.platform.node import Node, init_node

PASSWORD = "correct horse battery"
DOC = json.loads(DEFAULT_STRATEGY.read_text())
USERS = {"editor": ["strategy_editor"], "appr": ["approver"], "ana": ["analyst"]}


@pytest.fixture
def clients(tmp_path) -> dict[str, TestClient]:
    config, _ = init_node(tmp_path / "bank", "bank", "root", PASSWORD, password_memory_mb=8)
    node = Node(config)
    app = create_app(node, heartbeats=False)
    out = {}
    for name, roles in USERS.items():
        uri = node.accounts.create_user(name, PASSWORD, roles)
        otp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0]).now() if uri else None
        client = TestClient(app)
        r = client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD,
                                                     "otp": otp, "kind": "token"})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        out[name] = client
    return out


def _with_cutoff(score: float) -> dict[str, Any]:
    doc = json.loads(json.dumps(DOC))
    text = json.dumps(doc).replace(">= 680", f">= {score:g}")
    assert text != json.dumps(doc), "the default strategy's A cut-off moved; update the test"
    return json.loads(text)


def test_propose_publish_maker_checker_and_rollback(clients):
    editor, appr, ana = clients["editor"], clients["appr"], clients["ana"]
    r = ana.post("/api/v1/strategies/preloan/versions", json={"document": DOC})
    assert r.status_code == 403 and "strategy_editor" in r.json()["error"]["message"]
    v1 = editor.post("/api/v1/strategies/preloan/versions", json={"document": DOC})
    assert v1.status_code == 201, v1.text
    assert v1.json()["version"] == 1
    r = editor.post("/api/v1/strategies/preloan/versions/1/publish")
    assert r.status_code == 403 and "approver" in r.json()["error"]["message"]
    r = appr.post("/api/v1/strategies/preloan/versions/1/publish")
    assert r.status_code == 200 and r.json()["champion"] == 1
    v2 = editor.post("/api/v1/strategies/preloan/versions", json={"document": _with_cutoff(700)})
    assert v2.json()["version"] == 2
    assert appr.post("/api/v1/strategies/preloan/versions/2/publish").json()["champion"] == 2
    listed = {i["version"]: i for i in ana.get("/api/v1/strategies").json()["items"]}
    assert listed[2]["in_service"] and not listed[1]["in_service"]
    assert appr.post("/api/v1/strategies/preloan/versions/1/rollback").json()["champion"] == 1
    got = ana.get("/api/v1/strategies/preloan/versions/2").json()
    assert got["champion"] == 1 and ">= 700" in json.dumps(got["document"])


def test_validation_names_rule_and_field(clients):
    doc = json.loads(json.dumps(DOC))
    table = next(n for n in doc["nodes"] if n["name"] == "screens")
    table["content"]["inputs"][0]["field"] = "screen.fin.list_typo"
    r = clients["editor"].post("/api/v1/strategies/preloan/validate", json={"document": doc})
    body = r.json()
    assert r.status_code == 200 and body["ok"] is False
    assert (body["rule"], body["field"]) == ("screens", "screen.fin.list_typo")
    ok = clients["editor"].post("/api/v1/strategies/preloan/validate", json={"document": DOC})
    assert ok.json()["ok"] is True
    r = clients["editor"].post("/api/v1/strategies/preloan/versions", json={"document": doc})
    assert r.status_code == 400 and "screen.fin.list_typo" in r.json()["error"]["message"]


def test_simulate_draft_shows_grade_and_fired_rules(clients):
    context = build_context({"loan_amount": 800_000.0, "avg_deposit_balance_6m": 200_000.0},
                            {}, 690.0, [])
    r = clients["editor"].post("/api/v1/strategies/preloan/versions/0/simulate",
                               json={"document": DOC, "context": context})
    assert r.status_code == 200, r.text
    assert r.json()["grade"] == "A" and r.json()["fired"]
    r = clients["editor"].post("/api/v1/strategies/preloan/versions/0/simulate",
                               json={"document": _with_cutoff(700), "context": context})
    assert r.json()["grade"] == "B"
    example = clients["ana"].get("/api/v1/strategies/example-context").json()
    assert example == context
