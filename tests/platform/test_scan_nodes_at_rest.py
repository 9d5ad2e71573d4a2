"""Two real nodes after a job that aligned identifiers: nothing of the reference data is
readable in either node's folder - its database (node.db with its WAL and SHM files, read
while the node runs), the job's working folder, run log and artefacts.

The inputs hold credit codes, mobile numbers and names (the bank's applicants, the
registry's firms and legal representatives) and stay outside the node folders, where the
owners keep them; the job carries every column into the aligned tables.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshmpc.data.vault import MAGICS, STREAM_MAGICS
from meshmpc.platform.models import Job
from meshmpc.platform.node import Node

from .live import RunningNode, _body, _wait_state

pytestmark = pytest.mark.slow

JOB = """
name: scan
parties:
  bank: {{data: {bank_data}, key: credit_code, label: default_12m}}
  gov: {{data: "dataset:registry", key: credit_code}}
steps:
  - {{id: align, component: psi.align, params: {{protocol: rr22, validate: false}}}}
"""
SURNAMES = "王李张刘陈杨黄赵吴周"


def _people(n: int) -> tuple[list[str], list[str], list[str]]:
    codes = [f"91110108{i:09d}K" for i in range(n)]
    phones = [f"139{i:04d}{(i * 7919) % 10000:04d}" for i in range(n)]
    names = [f"{SURNAMES[i % 10]}{chr(0x4E00 + 37 * i % 20000)}{chr(0x4E00 + 91 * i % 20000)}"
             for i in range(n)]
    return codes, phones, names


def _readable(path: Path) -> bytes:
    """What someone with the disk and no key reads in ``path``."""
    data = path.read_bytes()
    if data[:4] in MAGICS + STREAM_MAGICS:
        return b""
    if data[:4] == b"PAR1":
        return data + str(pq.read_table(io.BytesIO(data)).to_pylist()).encode()
    return data


def _job(bank: RunningNode, gov: RunningNode, spec: str) -> str:
    job_id = str(bank.client("ana").post("/jobs", json=_body(spec)).json()["id"])
    _wait_state(gov.client("appr"), job_id, {"AwaitingApproval"}, timeout=20)
    gov.client("appr").post(f"/jobs/{job_id}/approve", json={"reason": "scan"})
    for node in (bank, gov):
        job = _wait_state(node.client("ana"), job_id, {"Succeeded", "Failed"})
        assert job["state"] == "Succeeded", job
    return job_id


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ...]]:
    """bank and gov serving, peered; gov holds two datasets granted to bank; one job ran."""
    tmp_path = tmp_path_factory.mktemp("scan")
    codes, phones, names = _people(80)
    pq.write_table(pa.table({"credit_code": codes[:60], "contact_phone": phones[:60],
                             "applicant_name": names[:60],
                             "default_12m": [i % 2 for i in range(60)]}),
                   tmp_path / "bank.parquet")
    pq.write_table(pa.table({"credit_code": codes[20:], "legal_rep_phone": phones[20:],
                             "legal_rep": names[20:], "reg_capital": list(range(60))}),
                   tmp_path / "registry.parquet")
    bank, gov = RunningNode(tmp_path, "bank"), RunningNode(tmp_path, "gov")
    try:
        for me, other in ((bank, gov), (gov, bank)):
            r = me.client("root").put(f"/peers/{other.party}", json={
                "address": f"127.0.0.1:{other.mesh}", "public_key": other.public_key,
                "api_url": other.url})
            assert r.status_code == 200, r.text
        grants = {}
        for dataset in ("registry", "registry2"):
            assert gov.client("ana").post("/datasets", json={
                "name": dataset, "uri": str(tmp_path / "registry.parquet")}).status_code == 201
            r = gov.client("sec").post("/grants", json={"dataset": dataset, "grantee": "bank"})
            assert r.status_code == 201, r.text
            grants[dataset] = r.json()["id"]
        spec = JOB.format(bank_data=tmp_path / "bank.parquet")
        job_id = _job(bank, gov, spec)
        yield bank, gov, tmp_path, [v.encode() for v in (*codes, *phones, *names)], job_id, \
            grants, spec
    finally:
        bank.stop()
        gov.stop()


def test_node_databases_and_job_folders_hold_no_reference_identifier(nodes: Any) -> None:
    bank, gov, tmp_path, needles, _, _, _ = nodes
    plain = _readable(tmp_path / "bank.parquet")  # the scan does find them in clear
    assert sum(v in plain for v in needles) == 3 * 60
    time.sleep(0.5)  # the last audit anchors land in the databases
    for node in (bank, gov):  # scanned while the node runs: the WAL holds the recent writes
        files = sorted(p for p in node.dir.rglob("*") if p.is_file())
        names_seen = {p.name for p in files}
        assert {"node.db", "node.db-wal", "node.db-shm", "run.log"} <= names_seen, names_seen
        assert any(p.name == "aligned.parquet" for p in files)
        hits = {str(p.relative_to(node.dir)): n for p in files
                if (n := sum(v in (text := _readable(p)) for v in needles)) and text}
        assert hits == {}, f"{node.party}: identifiers readable in {hits}"


def _audited(node: RunningNode, job_id: str) -> list[dict[str, Any]]:
    entries = Node.open(node.dir).audit.search(kind="data.purge")
    return [e for e in entries if e["detail"].get("job") == job_id]


def test_revoking_a_grant_removes_its_jobs_on_both_nodes_and_purge_leaves_nothing_expired(
        nodes: Any) -> None:
    """Revoking the grant of one dataset deletes the jobs that used it at both nodes (each
    audit says what went) and keeps the job of another grant; once that one expires, a
    purge at each node removes it, with a dead run's leftover scratch."""
    bank, gov, _, _, first, grants, spec = nodes
    second = _job(bank, gov, spec.replace("dataset:registry", "dataset:registry2"))
    assert gov.client("sec").post(f"/grants/{grants['registry']}/revoke").status_code == 200
    for node in (bank, gov):
        assert not (node.dir / "jobs" / first).exists(), node.party
        assert (node.dir / "jobs" / second).is_dir(), node.party
        [entry] = _audited(node, first)
        assert entry["detail"]["bytes"] > 0 and entry["detail"]["path"].endswith(first)
    dead = bank.dir / "jobs" / second / "out" / "scan" / "bank" / ".tmp-align-dead"
    dead.mkdir()
    (dead / "aligned.parquet").write_bytes(b"MMC1" + bytes(64))
    shown = subprocess.run([sys.executable, "-m", "meshmpc.cli", "data", "purge", "--dir",
                            str(bank.dir)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert ".tmp-align-dead" in shown.stdout and not dead.exists()  # scratch of a dead run
    assert (bank.dir / "jobs" / second / "out").is_dir()  # the job itself has not expired
    for node in (bank, gov):
        with Node.open(node.dir).db.session() as session:
            job = session.get(Job, second)
            assert job is not None and job.expires is not None
            job.expires = time.time() - 1
        shown = subprocess.run([sys.executable, "-m", "meshmpc.cli", "data", "purge", "--dir",
                                str(node.dir)], capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert f"deleted node job {second}" in shown.stdout
        assert not (node.dir / "jobs" / second).exists()
        assert _audited(node, second)
        left = [p for p in (node.dir / "jobs").rglob("*") if p.is_file()]
        assert left == [], left
