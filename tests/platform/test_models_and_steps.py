"""Model versions (metrics, deployment, the deployed-version contract), job specs, step grid."""

import json

import pytest

from meshmpc.platform.model_registry import register_models, roc_points
from meshmpc.platform.models import Job, JobParty, JobStep, ModelVersion
from meshmpc.platform.orchestrate import Orchestrator

SPEC = """
name: card4
parties:
  bank: {data: bank.parquet, key: credit_code, label: default_12m}
  gov: {data: "dataset:registry", key: credit_code}
steps:
  - {id: align, component: psi.align}
  - {id: bins, component: ml.binning, after: [align]}
  - {id: lr, component: ml.logistic, after: [bins]}
  - {id: card, component: ml.scorecard, after: [lr]}
  - {id: eval, component: ml.evaluate, after: [card], parties: [gov]}
"""
STEPS = ["align", "bins", "lr", "card", "eval"]


def _add_job(node, job_id="j1", state="Running"):
    with node.db.session() as s:
        s.add(Job(id=job_id, name="card4", initiator="bank", spec=SPEC, submitted_by="bank:ana",
                  state=state, parties=[JobParty(party="bank", approval="approved"),
                                        JobParty(party="gov", approval="approved")],
                  steps=[JobStep(party=p, step=st) for st in STEPS for p in ("bank", "gov")
                         if st != "eval" or p == "gov"]))


def test_failed_job_marks_steps_that_never_ran(gov_node):
    node = gov_node.node
    _add_job(node)
    orchestrator = Orchestrator(node)
    orchestrator._record_steps("j1", "gov", {"align": {"state": "Succeeded"},
                                             "bins": {"state": "Failed", "error": "bad bins"}})
    orchestrator._record_steps("j1", "bank", {"align": {"state": "Succeeded"},
                                              "bins": {"state": "Running"}})
    orchestrator._finish("j1", "Failed", "gov: bad bins")
    job = gov_node.as_user("ana").get("/api/v1/jobs/j1").json()
    grid = {(s["party"], s["step"]): s["state"] for s in job["steps"]}
    assert grid == {("gov", "align"): "Succeeded", ("gov", "bins"): "Failed",
                    ("gov", "lr"): "NotRun", ("gov", "card"): "NotRun", ("gov", "eval"): "NotRun",
                    ("bank", "align"): "Succeeded", ("bank", "bins"): "Stopped",
                    ("bank", "lr"): "NotRun", ("bank", "card"): "NotRun"}
    summary = gov_node.as_user("ana").get("/api/v1/jobs").json()["items"][0]
    assert summary["step_states"] == {"Succeeded": 2, "Failed": 1, "Stopped": 1, "NotRun": 5}
    from meshmpc.platform.orchestrate import _reopen_steps

    with node.db.session() as s:  # a retry starts every unfinished step again
        _reopen_steps(s.get(Job, "j1"))
    job = gov_node.as_user("ana").get("/api/v1/jobs/j1").json()
    states = {(s["party"], s["step"]): s["state"] for s in job["steps"]}
    assert states[("gov", "align")] == "Succeeded" and states[("gov", "bins")] == "Pending"
    assert "NotRun" not in states.values() and "Stopped" not in states.values()


def test_job_spec_readable_by_every_role(gov_node):
    _add_job(gov_node.node)
    r = gov_node.as_user("aud").get("/api/v1/jobs/j1/spec")
    assert r.status_code == 200 and r.json()["spec"] == SPEC and r.json()["initiator"] == "bank"
    r = gov_node.as_user("aud").get("/api/v1/jobs/nope/spec")
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


def test_roc_points_from_gains():
    gains = [{"rows": 10, "bads": 6}, {"rows": 10, "bads": 3}, {"rows": 10, "bads": 1}]
    points = roc_points(gains)  # goods 4, 7, 9 of 20; bads 6, 3, 1 of 10
    assert points == [[0.0, 0.0], [0.2, 0.6], [pytest.approx(0.55), pytest.approx(0.9)], [1.0, 1.0]]


def _write_outputs(root):
    (root / "card").mkdir(parents=True)
    (root / "card" / "scorecard.json").write_text(json.dumps({"points": {}}))
    (root / "card" / "report.json").write_text(json.dumps({"base_points": 512.5, "ok": True}))
    (root / "eval").mkdir()
    gains = [{"decile": k + 1, "rows": 10, "bads": 9 - k, "ks": 0.1 * k} for k in range(10)]
    (root / "eval" / "report.json").write_text(json.dumps({
        "auc": 0.81, "ks": 0.47, "gini": 0.62, "gains": gains, "confusion": [1, 2]}))


def test_model_versions_carry_evaluation_metrics(gov_node, tmp_path):
    node = gov_node.node
    _add_job(node, state="Succeeded")
    _write_outputs(tmp_path / "out")
    assert register_models(node, "j1", tmp_path / "out") == ["card4.card.scorecard"]
    assert register_models(node, "j1", tmp_path / "out") == ["card4.card.scorecard"]
    items = gov_node.as_user("ana").get("/api/v1/models").json()["items"]
    assert [m["version"] for m in items] == [2, 1]
    metrics = items[0]["metrics"]
    assert metrics["base_points"] == 512.5 and "ok" not in metrics
    evaluation = metrics["evaluation"]
    assert evaluation["ks"] == 0.47 and evaluation["auc"] == 0.81 and "confusion" not in evaluation
    assert evaluation["roc"][0] == [0.0, 0.0] and evaluation["roc"][-1] == [1.0, 1.0]
    assert len(evaluation["roc"]) == 11 and items[0]["lineage"]["component"] == "ml.scorecard"


@pytest.fixture
def two_versions(gov_node):
    with gov_node.node.db.session() as s:
        for version in (1, 2):
            s.add(ModelVersion(name="card4.card.scorecard", version=version, job_id="j1",
                               step="card", path=f"/m/v{version}.json", holders=["gov"],
                               metrics={"evaluation": {"ks": 0.4 + version / 100}}))
    with gov_node.node.db.session() as s:
        return {m.version: m.id for m in s.query(ModelVersion)}


def test_deployed_version_follows_deploy(gov_node, two_versions):
    ana, approver = gov_node.as_user("ana"), gov_node.as_user("appr")
    url = "/api/v1/models/deployed?name=card4.card.scorecard"
    r = ana.get(url)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_deployed"
    assert "POST /api/v1/models/{id}/deploy" in r.json()["error"]["message"]
    assert ana.post(f"/api/v1/models/{two_versions[2]}/deploy").status_code == 403
    assert approver.post(f"/api/v1/models/{two_versions[2]}/deploy").status_code == 200
    got = ana.get(url).json()
    assert (got["version"], got["path"], got["deployed"]) == (2, "/m/v2.json", True)
    assert got["metrics"]["evaluation"]["ks"] == pytest.approx(0.42)
    assert approver.post(f"/api/v1/models/{two_versions[1]}/deploy").status_code == 200
    assert ana.get(url).json()["version"] == 1  # a rollback moves the mark
    assert [m["version"] for m in ana.get("/api/v1/models/deployed").json()["items"]] == [1]
    deploys = gov_node.node.audit.search(kind="model.deploy")
    assert [e["detail"]["version"] for e in deploys] == [1, 2]


def test_a_status_report_of_an_earlier_run_does_not_fail_a_retry(tmp_path):
    """The console found it: gov's final 'Failed' of run 1, arriving after bank retried
    the job, turned run 2 Failed with the old cause."""
    import asyncio

    from meshmpc.platform.models import Job
    from meshmpc.platform.node import Node, init_node
    from meshmpc.platform.orchestrate import Orchestrator

    config, _ = init_node(tmp_path / "bank", "bank", "root", "correct horse battery",
                          password_memory_mb=8)
    node = Node(config)
    orchestrator = Orchestrator(node)
    with node.db.session() as s:
        s.add(Job(id="j1", name="n", initiator="bank", spec="name: n\nsteps: []\n",
                  state="Pending", submitted_by="ana"))
    orchestrator.runs["j1"] = 2  # bank retried: run 2 is under way
    asyncio.run(orchestrator.on_status("gov", {"id": "j1", "steps": {}, "final_state": "Failed",
                                               "error": "gov: old cause", "run": 1}))
    with node.db.session() as s:
        assert s.get(Job, "j1").state == "Pending"
    asyncio.run(orchestrator.on_status("gov", {"id": "j1", "steps": {}, "final_state": "Failed",
                                               "error": "gov: new cause", "run": 2}))
    with node.db.session() as s:
        job = s.get(Job, "j1")
        assert job.state == "Failed" and "new cause" in job.error
