"""``meshmpc job validate`` and ``meshmpc job run`` (local, and one node per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshmpc.data.vault import Vault
from meshmpc.jobs.artefacts import read_local_table, read_table
from meshmpc.net.local import make_local_cluster

MESHMPC = [sys.executable, "-m", "meshmpc.cli"]


def _write_job(tmp_path: Path, component: str = "psi.align") -> Path:
    (tmp_path / "bank.csv").write_text("id,x\n" + "".join(f"k{i},{i}\n" for i in range(40)))
    (tmp_path / "gov.csv").write_text("id,y\n" + "".join(f"k{i},{-i}\n"
                                                         for i in range(20, 70)))
    job = tmp_path / "job.yaml"
    job.write_text("name: tiny\n"
                   "parties:\n"
                   "  bank: {data: bank.csv, key: id, label: x}\n"
                   "  gov: {data: gov.csv, key: id}\n"
                   "steps:\n"
                   f"  - {{id: align, component: {component}, params: {{protocol: ecdh}}}}\n")
    return job


def test_validate_accepts_a_good_file_and_names_the_step_of_a_bad_one(tmp_path: Path) -> None:
    good = subprocess.run([*MESHMPC, "job", "validate", str(_write_job(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and "valid" in good.stdout and "psi.align" in good.stdout
    bad = subprocess.run([*MESHMPC, "job", "validate", str(_write_job(tmp_path, "psi.algn"))],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "step 'align'" in bad.stderr and "did you mean 'psi.align'" in bad.stderr


def _aligned_ids(out: Path, party: str, vault: Vault | None = None) -> list[str]:
    step = out / "tiny" / party / "align"
    table = read_table(step, "aligned", vault) if vault else read_local_table(
        step / "aligned.parquet")
    return [str(v) for v in table.column("id").to_pylist()]


def test_run_every_party_locally(tmp_path: Path) -> None:
    job = _write_job(tmp_path)
    out = subprocess.run([*MESHMPC, "job", "run", str(job), "--out", str(tmp_path / "out"),
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert results["bank"]["steps"]["align"]["report"]["aligned_rows"] == 20
    assert _aligned_ids(tmp_path / "out", "gov") == [f"k{i}" for i in range(20, 40)]


def test_run_one_node_per_process_then_resume(tmp_path: Path) -> None:
    job = _write_job(tmp_path)
    make_local_cluster(["bank", "gov"], tmp_path)

    def both(*extra: str) -> dict[str, dict]:
        command = [*MESHMPC, "job", "run", str(job), "--config", str(tmp_path / "cluster.toml"),
                   "--out", str(tmp_path / "out"), "--json", *extra, "--party"]
        gov = subprocess.Popen([*command, "gov"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        bank = subprocess.run([*command, "bank"], capture_output=True, text=True, timeout=120)
        gov_out, gov_err = gov.communicate(timeout=120)
        assert bank.returncode == 0 and gov.returncode == 0, bank.stderr + gov_err
        return {**json.loads(bank.stdout), **json.loads(gov_out)}

    first = both()
    assert first["gov"]["steps"]["align"]["status"] == "ran"
    vault = Vault.load(tmp_path / "bank.vault")  # made beside bank.key on the first run
    assert _aligned_ids(tmp_path / "out", "bank", vault) == [f"k{i}" for i in range(20, 40)]
    again = both("--resume")
    assert again["bank"]["steps"]["align"]["status"] == "resumed"
    assert again["bank"]["steps"]["align"]["report"]["aligned_rows"] == 20
