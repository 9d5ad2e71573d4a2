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


def _meshmpc(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line in this process (faster than a subprocess), capturing output."""
    import contextlib
    import io

    from meshmpc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_keygen_refuses_an_existing_key_and_a_bad_name(tmp_path: Path) -> None:
    assert _meshmpc("keygen", "--party", "bank", "--out", str(tmp_path)).returncode == 0
    _one_line_error(_meshmpc("keygen", "--party", "bank", "--out", str(tmp_path)),
                    "bank.key exists")
    _one_line_error(_meshmpc("keygen", "--party", "bad name/../x", "--out", str(tmp_path)),
                    "not allowed")
    assert not list(tmp_path.glob("*x.key")) and not (tmp_path.parent / "x.key").exists()


def test_keygen_snippets_form_a_valid_config(tmp_path: Path) -> None:
    from meshmpc.net.config import load_config

    parts = ['[cluster]\nid = "demo"\n']
    for party, port in (("bank", 7101), ("gov", 7102)):
        out = _meshmpc("keygen", "--party", party, "--out", str(tmp_path),
                       "--address", f"127.0.0.1:{port}")
        assert out.returncode == 0, out.stderr
        parts.append(out.stdout)
    path = tmp_path / "cluster.toml"
    path.write_text("\n".join(parts))
    config = load_config(path)
    assert config.party_ids == ["bank", "gov"] and config.party("gov").port == 7102


def test_launch_errors_are_one_line() -> None:
    _one_line_error(_meshmpc("launch", "--job", "nosuch:job"), "no module 'nosuch'")
    _one_line_error(_meshmpc("launch", "--job", "meshmpc.net.check:no_such_function"),
                    "has no function 'no_such_function'")
    _one_line_error(_meshmpc("launch", "--job", "meshmpc.psi.job:run_job_options",
                             "--args", '{"input": "a.csv", "peers": ["gov"]}'),
                    "missing field 'keys'")
    _one_line_error(_meshmpc("launch", "--args", '{"pings": 1, "bulk_mb": 1}'),
                    "bulk_mb")


def test_port_in_use_and_foreign_address_are_one_line_errors(tmp_path: Path) -> None:
    import socket

    config, _ = make_local_cluster(["bank", "gov"], tmp_path)
    path = tmp_path / "cluster.toml"
    bank = config.party("bank")
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        holder.bind((bank.host, bank.port))
        holder.listen()
        _one_line_error(_meshmpc("mesh", "check", "--config", str(path), "--party", "bank"),
                        "already in use", f"{bank.host}:{bank.port}")
    path.write_text(path.read_text().replace(f"127.0.0.1:{bank.port}", "192.0.2.7:7001"))
    _one_line_error(_meshmpc("mesh", "check", "--config", str(path), "--party", "bank"),
                    "not an address of this machine")


def test_mesh_check_with_different_parameters_names_them_and_stops(tmp_path: Path) -> None:
    make_local_cluster(["bank", "gov"], tmp_path)
    command = [*MESHMPC, "mesh", "check", "--config", str(tmp_path / "cluster.toml"),
               "--bulk-mib", "1", "--party"]
    gov = subprocess.Popen([*command, "gov", "--pings", "5"], stderr=subprocess.PIPE, text=True)
    bank = subprocess.run([*command, "bank", "--pings", "7"], capture_output=True, text=True,
                          timeout=60)
    _, gov_err = gov.communicate(timeout=60)
    assert bank.returncode == 2 and "--pings differs" in bank.stderr, bank.stderr
    assert gov.returncode != 0


def test_debug_shows_the_traceback(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MESHMPC_DEBUG", "0")  # --debug sets it to 1; undone after the test
    out = _meshmpc("--debug", "launch", "--job", "nosuch:job")
    assert out.returncode == 2 and "Traceback" in out.stderr
    monkeypatch.setenv("MESHMPC_DEBUG", "0")
    out = _meshmpc("launch", "--job", "nosuch:job", "--debug")
    assert "Traceback" in out.stderr
    monkeypatch.setenv("MESHMPC_DEBUG", "0")
    assert "Traceback" not in _meshmpc("launch", "--job", "nosuch:job").stderr
