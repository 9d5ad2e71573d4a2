"""Sealed artefacts in the runner, and retention of plain output folders (`meshmpc data purge`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshmpc.data.purge import PURGE_LOG, purge_outputs
from meshmpc.data.vault import Vault, VaultError, is_sealed
from meshmpc.jobs import artefacts
from meshmpc.jobs.local import run_job_in_memory

COMPONENTS = {f"t.{n}": f"jobs_testing_components:{n}" for n in ("emit", "add")}
DAY = 86400.0


def _job(name: str, purpose: str | None) -> dict:
    raw = {"name": name, "parties": {"bank": {}, "gov": {}},
           "steps": [{"id": "e", "component": "t.emit", "params": {"scale": 5}},
                     {"id": "s", "component": "t.add", "after": ["e"]}]}
    return raw if purpose is None else {**raw, "purpose": purpose}


def _run(out: Path, raw: dict, keys: Path | None, resume: bool = False) -> dict:
    results = asyncio.run(run_job_in_memory(raw, out, components=COMPONENTS, vault_dir=keys,
                                            resume=resume))
    assert all(isinstance(r, dict) for r in results.values()), results
    return results


def test_sealed_steps_resume_and_refuse_the_wrong_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    _run(tmp_path / "out", _job("two", None), keys)
    step = tmp_path / "out" / "two" / "bank" / "e"
    files = [p for p in step.iterdir() if p.is_file()]
    assert files and all(is_sealed(p) for p in files)
    manifest = json.loads((step.parent / "manifest.json").read_text())
    assert manifest["vault_key_id"] == Vault.load(keys / "bank.vault").key_id.hex()
    assert artefacts.read_json(step, "report.json", Vault.load(keys / "bank.vault")) is not None
    with pytest.raises(VaultError, match="vault key"):
        artefacts.read_json(step, "report.json")
    with pytest.raises(VaultError, match="another vault key"):
        artefacts.read_json(step, "report.json", Vault.load(keys / "gov.vault"))
    again = _run(tmp_path / "out", _job("two", None), keys, resume=True)
    assert again["bank"]["steps"]["s"]["status"] == "resumed"
    assert again["bank"]["steps"]["s"]["report"] == _run(
        tmp_path / "plain", _job("two", None), None)["bank"]["steps"]["s"]["report"]
    other = _run(tmp_path / "out", _job("two", None), tmp_path / "newkeys", resume=True)
    assert other["bank"]["steps"]["e"]["status"] == "ran"  # other key: not skipped, re-run


def test_purge_deletes_only_what_outlived_its_purpose(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(out, _job("approval", "credit_approval"), None)    # 180 days
    _run(out, _job("postloan", "post_loan_management"), None)  # 1825 days
    _run(out, _job("nopurpose", None), None)
    purposes = {"credit_approval": 180, "post_loan_management": 1825}
    later = time.time() + 200 * DAY
    listed = purge_outputs(out, purposes, dry_run=True, now=later)
    actions = {(d.folder.job, d.folder.party): d.action for d in listed}
    assert actions == {("approval", "bank"): "delete", ("approval", "gov"): "delete",
                       ("nopurpose", "bank"): "keep", ("nopurpose", "gov"): "keep",
                       ("postloan", "bank"): "keep", ("postloan", "gov"): "keep"}
    assert (out / "approval" / "bank").is_dir()  # a dry run deletes nothing
    purge_outputs(out, purposes, now=later)
    assert not (out / "approval").exists() and (out / "postloan" / "bank").is_dir()
    log = [json.loads(line) for line in (out / PURGE_LOG).read_text().splitlines()]
    assert {(r["job"], r["party"]) for r in log} == {("approval", "bank"), ("approval", "gov")}
    assert all(r["bytes"] > 0 and "credit_approval" in r["reason"] for r in log)
    by_default = purge_outputs(out, {"x": 0}, dry_run=True, default_purpose="x")
    assert {d.folder.job: d.action for d in by_default}["nopurpose"] == "delete"


def test_data_purge_command_dry_run_lists_and_keeps(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(out, _job("approval", "credit_approval"), None)
    command = [sys.executable, "-m", "meshmpc.cli", "data", "purge", "--out", str(out),
               "--purpose", "credit_approval", "--dry-run"]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "keep" in shown.stdout and "kept until" in shown.stdout
    assert "would delete 0" in shown.stdout and (out / "approval" / "bank").is_dir()


def test_a_file_that_is_also_a_model_is_sealed_once(tmp_path: Path) -> None:
    """ml.scorecard returns its card as a model and lists the same scorecard.json among its
    files: it was sealed twice and every reader got ciphertext back (the demo's stage 5)."""
    from meshmpc.jobs.api import StepOutput

    vault = Vault.create(tmp_path / "bank.vault")
    work = tmp_path / "job" / "bank" / "card"
    work.mkdir(parents=True)
    (work / "scorecard.json").write_text('{"points": 1}')
    (work / "notes.txt").write_text("own file")
    output = StepOutput(models={"scorecard": {"points": 1}}, files=["scorecard.json",
                                                                    "notes.txt"])
    sealing = artefacts.Sealing.for_step(vault, "job", "bank", "card")
    artefacts.write_output(work, output, sealing)
    assert artefacts.read_json(work, "scorecard.json", vault) == {"points": 1}
    assert artefacts.read_bytes(work, "notes.txt", vault) == b"own file"
    assert is_sealed(work / "notes.txt") and is_sealed(work / "scorecard.json")
