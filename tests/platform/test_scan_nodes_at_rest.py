"""Two real nodes after a job that aligned identifiers: nothing of the reference data is
readable in either node's folder - its database (node.db with its WAL and SHM files, read
while the node runs), the job's working folder, run log and artefacts.

The inputs hold credit codes, mobile numbers and names (the bank's applicants, the
registry's firms and legal representatives) and stay outside the node folders, where the
owners keep them; the job carries every column into the aligned tables.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshmpc.data.vault import MAGICS, STREAM_MAGICS

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


def test_node_databases_and_job_folders_hold_no_reference_identifier(tmp_path: Path) -> None:
    codes, phones, names = _people(80)
    pq.write_table(pa.table({"credit_code": codes[:60], "contact_phone": phones[:60],
                             "applicant_name": names[:60],
                             "default_12m": [i % 2 for i in range(60)]}),
                   tmp_path / "bank.parquet")
    pq.write_table(pa.table({"credit_code": codes[20:], "legal_rep_phone": phones[20:],
                             "legal_rep": names[20:], "reg_capital": list(range(60))}),
                   tmp_path / "registry.parquet")
    nodes = (home := tmp_path / "nodes", RunningNode(home, "bank"), RunningNode(home, "gov"))[1:]
    bank, gov = nodes
    try:
        for me, other in ((bank, gov), (gov, bank)):
            r = me.client("root").put(f"/peers/{other.party}", json={
                "address": f"127.0.0.1:{other.mesh}", "public_key": other.public_key,
                "api_url": other.url})
            assert r.status_code == 200, r.text
        assert gov.client("ana").post("/datasets", json={
            "name": "registry", "uri": str(tmp_path / "registry.parquet")}).status_code == 201
        assert gov.client("sec").post("/grants", json={
            "dataset": "registry", "grantee": "bank"}).status_code == 201
        spec = JOB.format(bank_data=tmp_path / "bank.parquet")
        job_id = bank.client("ana").post("/jobs", json=_body(spec)).json()["id"]
        _wait_state(gov.client("appr"), job_id, {"AwaitingApproval"}, timeout=20)
        gov.client("appr").post(f"/jobs/{job_id}/approve", json={"reason": "scan"})
        for node in nodes:
            job = _wait_state(node.client("ana"), job_id, {"Succeeded", "Failed"})
            assert job["state"] == "Succeeded", job
        time.sleep(0.5)  # the last audit anchors land in the databases
        needles = [v.encode() for v in (*codes, *phones, *names)]
        plain = _readable(tmp_path / "bank.parquet")  # the scan does find them in clear
        assert sum(v in plain for v in needles) == 3 * 60
        for node in nodes:  # scanned while the node runs: the WAL holds the recent writes
            files = sorted(p for p in node.dir.rglob("*") if p.is_file())
            names_seen = {p.name for p in files}
            assert {"node.db", "node.db-wal", "node.db-shm", "run.log"} <= names_seen, names_seen
            assert any(p.name == "aligned.parquet" for p in files)
            hits = {str(p.relative_to(node.dir)): n for p in files
                    if (n := sum(v in (text := _readable(p)) for v in needles)) and text}
            assert hits == {}, f"{node.party}: identifiers readable in {hits}"
    finally:
        bank.stop()
        gov.stop()
