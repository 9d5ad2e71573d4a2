"""Two real nodes on loopback: data, grant, submit, approve, run, results; and the refusals."""

import os
import time

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshmpc.data.vault import Vault, is_sealed
from meshmpc.jobs.artefacts import read_table
from meshmpc.net.config import DEFAULT_RESUME_GRACE_S
from meshmpc.platform.node import Node

from .live import REFS, RunningNode, _body, _wait_state

JOB = """
name: align-only
parties:
  bank: {{data: {bank_data}, key: credit_code, label: default_12m}}
  gov: {{data: "dataset:{dataset}", key: credit_code}}
steps:
  - {{id: align, component: psi.align, params: {{protocol: kkrt, validate: false}}}}
"""



@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("nodes")
    bank, gov = RunningNode(tmp_path, "bank"), RunningNode(tmp_path, "gov")
    try:
        for me, other in ((bank, gov), (gov, bank)):
            r = me.client("root").put(f"/peers/{other.party}", json={
                "address": f"127.0.0.1:{other.mesh}", "public_key": other.public_key,
                "api_url": other.url})
            assert r.status_code == 200, r.text
        keys = [f"9111{i:014d}" for i in range(60)]
        pq.write_table(pa.table({"credit_code": keys[:40],
                                 "default_12m": [i % 2 for i in range(40)]}),
                       tmp_path / "bank.parquet")
        pq.write_table(pa.table({"credit_code": keys[20:], "reg_capital": list(range(40))}),
                       tmp_path / "registry.parquet")
        yield bank, gov, tmp_path
    finally:
        bank.stop()
        gov.stop()


@pytest.fixture
def two_nodes(nodes, request):
    """The running nodes, a dataset of this test's own at gov, and a job file using it."""
    bank, gov, tmp_path = nodes
    name = request.node.name.replace("test_", "")[:40]
    r = gov.client("ana").post("/datasets", json={"name": name,
                                                  "uri": str(tmp_path / "registry.parquet")})
    assert r.status_code == 201, r.text
    spec = JOB.format(bank_data=tmp_path / "bank.parquet", dataset=name)
    return bank, gov, spec, name


class _Dummy:
    from nacl.signing import SigningKey

    key = SigningKey(b"\x07" * 32)  # opening a log to read anchors signs nothing


def test_job_refused_without_grant(two_nodes):
    bank, gov, spec, dataset = two_nodes
    r = bank.client("ana").post("/jobs", json=_body(spec))
    assert r.status_code == 201, r.text
    job = _wait_state(bank.client("ana"), r.json()["id"], {"Rejected", "Failed"})
    assert job["state"] == "Rejected"
    assert dataset in job["error"] and "no grant" in job["error"]


def test_granted_job_approved_runs_on_both_nodes(two_nodes):
    bank, gov, spec, dataset = two_nodes
    r = gov.client("sec").post("/grants", json={"dataset": dataset, "grantee": "bank",
                                                "components": ["psi.align"]})
    assert r.status_code == 201, r.text
    job_id = bank.client("ana").post("/jobs", json=_body(spec)).json()["id"]
    gov_view = _wait_state(gov.client("appr"), job_id, {"AwaitingApproval"}, timeout=10)
    assert {p["party"]: p["approval"] for p in gov_view["parties"]} == {
        "bank": "approved", "gov": "pending"}
    approved_at = time.time()
    r = gov.client("appr").post(f"/jobs/{job_id}/approve", json={"reason": "grant 1"})
    assert r.status_code == 200, r.text
    for node in (bank, gov):
        job = _wait_state(node.client("ana"), job_id, {"Succeeded", "Failed"})
        assert job["state"] == "Succeeded", job
        assert job["started"] - approved_at < 2.0
        steps = {(s["party"], s["step"]): s["state"] for s in job["steps"]}
        assert steps[(node.party, "align")] == "Succeeded"
    step = gov.dir / "jobs" / job_id / "out" / "align-only" / "gov" / "align"
    assert is_sealed(step / "aligned.parquet")  # under the node's key from `node init`
    aligned = read_table(step, "aligned", Vault.load(gov.dir / "keys" / "gov.vault"))
    assert aligned.num_rows == 20
    results = gov.client("ana").get(f"/jobs/{job_id}/results").json()
    assert results["party"] == "gov" and results["steps"]["align"]["status"] == "ran"
    assert "aligned.parquet" in results["steps"]["align"]["artefacts"]
    got = gov.client("ana").get(f"/jobs/{job_id}/results/align/aligned.parquet")
    assert got.status_code == 200  # the owner's own analyst gets the table opened
    import io

    import pyarrow.parquet as pq

    assert pq.read_table(io.BytesIO(got.content)).equals(aligned)
    assert bank.client("ana").get(f"/jobs/{job_id}/results/align/x.parquet").status_code == 404
    # both nodes anchored each other's audit head at the end of the job
    from meshmpc.platform.audit import AuditLog

    for me, other in ((bank, gov), (gov, bank)):
        deadline = time.time() + 10
        while time.time() < deadline:
            log = AuditLog(f"sqlite:///{me.dir / 'node.db'}", me.party, _Dummy.key)
            if log.anchors_of(other.party):
                break
            time.sleep(0.2)
        assert log.anchors_of(other.party), f"{me.party} holds no audit head of {other.party}"


def test_approver_rejection_stops_job_everywhere(two_nodes):
    bank, gov, spec, dataset = two_nodes
    gov.client("sec").post("/grants", json={"dataset": dataset, "grantee": "bank"})
    job_id = bank.client("ana").post("/jobs", json=_body(spec)).json()["id"]
    _wait_state(gov.client("appr"), job_id, {"AwaitingApproval"}, timeout=10)
    gov.client("appr").post(f"/jobs/{job_id}/reject", json={"reason": "purpose missing"})
    job = _wait_state(bank.client("ana"), job_id, {"Rejected"}, timeout=10)
    assert "purpose missing" in job["error"]


def test_forged_peer_request_refused(two_nodes):
    bank, gov, spec, _ = two_nodes
    r = httpx.post(gov.url + "/api/v1/peer/jobs", json={"id": "x", "spec": spec,
                                                        "initiator": "bank"},
                   headers={"X-Meshmpc-Party": "bank", "X-Meshmpc-Time": str(time.time()),
                            "X-Meshmpc-Signature": "AAAA"})
    assert r.status_code == 401 and "bad signature" in r.json()["error"]["message"]


@pytest.mark.slow
def test_node_killed_mid_job_fails_it_on_the_other_node(nodes, tmp_path):
    import signal

    bank, gov, shared = nodes
    keys = [f"9122{i:014d}" for i in range(1_500_000)]
    pq.write_table(pa.table({"credit_code": keys[:1_000_000]}), tmp_path / "big_bank.parquet")
    pq.write_table(pa.table({"credit_code": keys[500_000:]}), tmp_path / "big_gov.parquet")
    gov.client("ana").post("/datasets", json={"name": "big",
                                              "uri": str(tmp_path / "big_gov.parquet")})
    gov.client("sec").post("/grants", json={"dataset": "big", "grantee": "bank",
                                            "auto_approve": True})
    spec = JOB.format(bank_data=tmp_path / "big_bank.parquet", dataset="big")
    job_id = bank.client("ana").post("/jobs", json=_body(spec)).json()["id"]
    _wait_state(gov.client("ana"), job_id, {"Running"}, timeout=30)
    time.sleep(1.0)
    killed_at = time.time()
    os.killpg(gov.proc.pid, signal.SIGKILL)
    job = _wait_state(bank.client("ana"), job_id, {"Failed"}, timeout=90)
    # the bank's party first tries to resume the link for the grace period (a dead
    # process and a network outage look the same from the other end), then fails
    assert time.time() - killed_at < DEFAULT_RESUME_GRACE_S + 20
    assert "gov" in job["error"]


def test_failed_job_names_party_and_retry_finishes_it(nodes, tmp_path):
    import shutil

    bank, gov, shared = nodes
    path = tmp_path / "moving.parquet"
    shutil.copy(shared / "registry.parquet", path)
    gov.client("ana").post("/datasets", json={"name": "moving", "uri": str(path)})
    gov.client("sec").post("/grants", json={"dataset": "moving", "grantee": "bank",
                                            "auto_approve": True})
    path.rename(tmp_path / "away.parquet")  # gov's file is gone when the job runs
    spec = JOB.format(bank_data=shared / "bank.parquet", dataset="moving")
    job_id = bank.client("ana").post("/jobs", json=_body(spec)).json()["id"]
    job = _wait_state(bank.client("ana"), job_id, {"Failed", "Succeeded"})
    assert job["state"] == "Failed" and "gov" in job["error"]
    log = gov.client("ana").get(f"/jobs/{job_id}/log").json()["log"]
    assert "moving.parquet" in log
    (tmp_path / "away.parquet").rename(path)
    r = bank.client("ana").post(f"/jobs/{job_id}/retry")
    assert r.status_code == 200, r.text
    job = _wait_state(bank.client("ana"), job_id, {"Failed", "Succeeded"})
    assert job["state"] == "Succeeded", (job["error"], (bank.dir / "jobs" / job_id /
                                                       "run.log").read_text()[-2000:])


def test_consent_required_and_only_its_root_reaches_the_owner(two_nodes):
    from meshmpc.platform.consent import merkle_proof, verify_proof
    from meshmpc.platform.models import ConsentBatch

    bank, gov, spec, dataset = two_nodes
    r = bank.client("ana").post("/jobs", json={"spec": spec, "purpose": "credit_approval"})
    assert r.status_code == 403 and "consent" in r.json()["error"]["message"]
    r = bank.client("ana").post("/jobs", json={"spec": spec, "purpose": "marketing",
                                               "consent_refs": REFS})
    assert r.status_code == 403 and "not configured" in r.json()["error"]["message"]
    job_id = bank.client("ana").post("/jobs", json=_body(spec)).json()["id"]
    _wait_state(gov.client("appr"), job_id, {"AwaitingApproval", "Rejected"}, timeout=10)
    node = Node.open(gov.dir)
    with node.db.session() as s:
        batch = s.query(ConsentBatch).filter_by(reference=job_id).one()
        assert batch.count == len(REFS) and batch.requester == "bank"
        root = batch.merkle_root
    assert REFS[3] not in (gov.dir / "node.db").read_bytes().decode("latin-1")
    assert verify_proof(REFS[3], merkle_proof(REFS, 3), root)


def test_revoked_grant_purges_both_nodes(two_nodes):
    bank, gov, spec, dataset = two_nodes
    grant = gov.client("sec").post("/grants", json={"dataset": dataset, "grantee": "bank",
                                                    "auto_approve": True}).json()["id"]
    job_id = bank.client("ana").post("/jobs", json=_body(spec)).json()["id"]
    for node in (bank, gov):
        assert _wait_state(node.client("ana"), job_id, {"Succeeded", "Failed"})["state"] == \
            "Succeeded"
    assert (bank.dir / "jobs" / job_id).exists() and (gov.dir / "jobs" / job_id).exists()
    r = gov.client("sec").post(f"/grants/{grant}/revoke")
    assert r.status_code == 200 and r.json()["purged_jobs"] == [job_id], r.text
    assert not (gov.dir / "jobs" / job_id).exists()
    assert not (bank.dir / "jobs" / job_id).exists()
    for node in (bank, gov):
        purged = Node.open(node.dir).audit.search(kind="data.purge")
        assert purged and purged[0]["detail"]["job"] == job_id


def _signed_heartbeat(node_url, party, identity):
    """A heartbeat to ``node_url`` signed with ``identity`` (as if ``party`` sent it)."""
    import json

    from meshmpc.platform.peering import sign_headers

    body = json.dumps({}).encode()
    headers = sign_headers(identity.signing_key, party, "POST", "/api/v1/peer/heartbeat", body)
    return httpx.post(node_url + "/api/v1/peer/heartbeat", content=body, headers=headers)


def test_key_rotation_overlap_then_revocation_reaches_the_peer(nodes):
    """Runs last: bank rotates its identity key online; gov accepts both keys during the
    overlap, then refuses the old one as soon as bank revokes it (target: within 60 s)."""
    from meshmpc.net.keys import IdentityKey
    from meshmpc.platform.audit import verify

    bank, gov, _ = nodes
    old = IdentityKey.load("bank", bank.dir / "keys" / "bank.key")
    r = bank.client("ana").post("/keys/rotate", json={"overlap_days": 1})
    assert r.status_code == 403  # only the security officer manages keys
    started = time.time()
    r = bank.client("sec").post("/keys/rotate", json={"overlap_days": 1})
    assert r.status_code == 200, r.text
    new_key = r.json()["public_key"]
    assert new_key != old.public_b64 and r.json()["not_yet_told"] == []
    seen = gov.client("root").get("/keys").json()["peers"]["bank"]
    assert seen["pinned"] == new_key
    assert [(k["public_key"], k["state"]) for k in seen["others"]] == [(old.public_b64,
                                                                        "previous")]
    assert _signed_heartbeat(gov.url, "bank", old).status_code == 200  # overlap: both keys
    deadline = time.time() + 20  # bank's own heartbeats, now signed with the new key
    while time.time() < deadline:
        peer = gov.client("root").get("/peers").json()["items"]
        if any(p["party"] == "bank" and (p["last_seen"] or 0) > started for p in peer):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("gov saw no heartbeat signed with bank's new key")

    start = time.time()
    r = bank.client("sec").post("/keys/revoke", json={"public_key": old.public_b64,
                                                      "reason": "test: leaked"})
    assert r.status_code == 200 and r.json()["told"] == ["gov"], r.text
    refused = _signed_heartbeat(gov.url, "bank", old)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert time.time() - start < 60
    r = bank.client("sec").post("/keys/revoke", json={"public_key": new_key})
    assert r.status_code == 400 and "rotate to a new key first" in r.text
    r = gov.client("root").put("/peers/bank", json={"address": "127.0.0.1:1",
                                                    "public_key": old.public_b64})
    assert r.status_code == 400 and "revoked" in r.text
    # bank's audit log: older checkpoints are signed by the old key, newer by the new one
    db = f"sqlite:///{bank.dir / 'node.db'}"
    new = IdentityKey.load("bank", bank.dir / "keys" / "bank.key")
    assert new.public_b64 == new_key
    both = verify(db, "bank", [new.signing_key.verify_key, old.signing_key.verify_key])
    assert both.ok
    if both.checkpoints:  # signed before the rotation (none when this test runs alone)
        assert not verify(db, "bank", new.signing_key.verify_key).ok
