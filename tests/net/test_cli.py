"""``meshmpc mesh check`` and ``meshmpc launch`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshmpc.net.local import make_local_cluster

MESHMPC = [sys.executable, "-m", "meshmpc.cli"]


def test_mesh_check_prints_every_link(tmp_path: Path) -> None:
    make_local_cluster(["bank", "gov"], tmp_path)
    command = [*MESHMPC, "mesh", "check", "--config", str(tmp_path / "cluster.toml"),
               "--pings", "10", "--bulk-mib", "1", "--json", "--party"]
    gov = subprocess.Popen([*command, "gov"], stdout=subprocess.PIPE, text=True)
    bank = subprocess.run([*command, "bank"], capture_output=True, text=True, timeout=60)
    gov_out, _ = gov.communicate(timeout=60)
    assert bank.returncode == 0 and gov.returncode == 0, bank.stderr
    line = json.loads(bank.stdout)
    assert line["party"] == "bank" and line["peer"] == "gov"
    assert line["rtt_us_median"] > 0 and line["gbytes_per_s"] > 0
    assert json.loads(gov_out)["peer"] == "bank"


def test_mesh_check_with_a_broken_config_names_file_and_field(tmp_path: Path) -> None:
    make_local_cluster(["bank", "gov"], tmp_path)
    path = tmp_path / "cluster.toml"
    path.write_text(path.read_text().replace('address = "127.0.0.1:', 'address = "127.0.0.1;'))
    out = subprocess.run([*MESHMPC, "mesh", "check", "--config", str(path), "--party", "bank"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert str(path) in out.stderr and "parties[0].address" in out.stderr


def test_launch_runs_the_mesh_report() -> None:
    out = subprocess.run([*MESHMPC, "launch", "--parties", "a,b,c",
                          "--args", '{"pings": 5, "bulk_mib": 1}'],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["party"] for line in lines] == ["a", "b", "c"]
    assert sorted(lines[0]["result"]["links"]) == ["b", "c"]
