"""Whole jobs over real local processes and the encrypted mesh (``meshmpc job run``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from meshmpc_credit.datagen import generate

from meshmpc.jobs.artefacts import read_local_table
from meshmpc.jobs.local import run_job_local
from meshmpc.net.launch import LaunchError

COMPONENTS = {f"t.{n}": f"jobs_testing_components:{n}" for n in ("emit", "add", "fail", "crash")}
FOUR = ["bank", "gov", "fin", "telco"]


def test_a_two_party_job_in_two_processes(tmp_path: Path, child_env: dict[str, str]) -> None:
    raw = {"name": "two", "parties": {"bank": {}, "gov": {}},
           "steps": [{"id": "e", "component": "t.emit", "params": {"scale": 5}},
                     {"id": "s", "component": "t.add", "after": ["e"]}]}
    results = run_job_local(raw, tmp_path, components=COMPONENTS, env=child_env)
    assert results["bank"]["steps"]["s"]["report"]["total"] == (0 + 1) + (5 + 6)
    for party in ("bank", "gov"):
        manifest = json.loads((tmp_path / "two" / party / "manifest.json").read_text())
        assert [s for s in manifest["steps"]] == ["e", "s"]
        assert all(v["status"] == "ran" and v["bytes_sent"] > 0
                   for v in manifest["steps"].values())


def _keys(path: Path, key: str = "credit_code") -> list[str]:
    return pq.read_table(path, columns=[key]).column(key).to_pylist()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobdata")
    generate(root, rows=300, seed=5, months=0)
    return root


def test_four_parties_align_then_a_subset_step(data: Path, tmp_path: Path,
                                               child_env: dict[str, str]) -> None:
    job = tmp_path / "align.yaml"
    job.write_text(
        "name: four\n"
        "parties:\n"
        f"  bank: {{data: {data}/bank.parquet, key: credit_code, label: default_12m}}\n"
        + "".join(f"  {p}: {{data: {data}/{p}.parquet, key: credit_code}}\n" for p in FOUR[1:])
        + "steps:\n"
        "  - {id: align, component: psi.align, params: {protocol: kkrt}}\n"
        "  - {id: pair, component: t.add, after: [align], parties: [bank, telco]}\n")
    results = run_job_local(job, tmp_path / "out", components=COMPONENTS, env=child_env)
    inputs = {p: _keys(data / f"{p}.parquet") for p in FOUR}
    common = set.intersection(*(set(k) for k in inputs.values()))
    expected = [k for k in inputs["bank"] if k in common]
    assert 0 < len(expected) < 300
    for party in FOUR:
        aligned = tmp_path / "out" / "four" / party / "align" / "aligned.parquet"
        table = read_local_table(aligned)  # sealed under the party's local vault key
        assert table.column("credit_code").to_pylist() == expected
        own = pq.read_table(data / f"{party}.parquet")
        assert table.column_names == own.column_names
        report = results[party]["steps"]["align"]["report"]
        assert report["aligned_rows"] == len(expected) and report["leakage"]
    bank = results["bank"]["steps"]["align"]["report"]
    assert bank["pairwise_intersection"]["fin"] == len(set(inputs["bank"]) & set(inputs["fin"]))
    assert results["gov"]["steps"]["pair"]["status"] == "not-a-party"
    assert results["telco"]["steps"]["pair"]["status"] == "ran"


def _fail_job(component: str) -> dict[str, Any]:
    return {"name": "stops", "parties": {p: {} for p in ("bank", "gov", "fin")},
            "steps": [{"id": "e", "component": "t.emit"},
                      {"id": "boom", "component": component, "after": ["e"],
                       "params": {"at": "gov", "delay": 0.3}}]}


@pytest.mark.parametrize("component", ["t.fail", "t.crash"])
def test_a_failed_or_killed_party_stops_every_process(tmp_path: Path, child_env: dict[str, str],
                                                      component: str) -> None:
    start = time.monotonic()
    with pytest.raises(LaunchError) as info:
        run_job_local(_fail_job(component), tmp_path, components=COMPONENTS, env=child_env,
                      timeout=60)
    assert time.monotonic() - start < 30  # nobody waited for the timeout
    message = str(info.value)
    for party in ("bank", "fin"):
        assert f"party {party}: job stopped in step 'boom': party gov" in message
    if component == "t.fail":
        assert "party gov: step 'boom' (t.fail) failed: ValueError" in message
    for party in ("bank", "gov", "fin"):
        root = tmp_path / "stops" / party
        assert (root / "e" / "report.json").exists()
        assert not (root / "boom").exists()
        if party != "gov" or component == "t.fail":
            assert not list(root.glob(".tmp-*"))
