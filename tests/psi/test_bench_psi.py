"""``meshmpc bench psi`` checks its own result: a wrong intersection fails loudly."""

from __future__ import annotations

from typing import Any

import pytest
from meshmpc_bench import psi as bench


def _fake_run(found: int) -> Any:
    def run(paths: Any, directory: Any, args: Any) -> dict[str, Any]:
        side = {"wall_s": 0.1, "bytes_sent": 1, "peak_rss_mb": 1.0, "intersection": found,
                "phases": {}, "cpu_s": 0.1}
        return {"bank": side, "gov": dict(side), "launch_s": 0.0}

    return run


@pytest.mark.parametrize("found,code", [(50, 0), (49, 1), (51, 1)])
def test_intersection_checked_against_overlap(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str],
                                              found: int, code: int) -> None:
    monkeypatch.setattr(bench, "_one_run", _fake_run(found))
    assert bench.main(["--rows", "100", "--overlap", "0.5", "--repeats", "1", "--json"]) == code
    if code:
        assert "expected 50" in capsys.readouterr().err


@pytest.mark.slow
def test_real_run_small(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert bench.main(["--rows", "2000", "--overlap", "0.25", "--repeats", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["intersection"] == 500


def test_ecdh_record_names_the_x25519_path(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    monkeypatch.setattr(bench, "_one_run", _fake_run(50))
    monkeypatch.setenv("MESHMPC_X25519", "libsodium")
    assert bench.main(["--rows", "100", "--protocol", "ecdh", "--repeats", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (record["x25519_path"], record["x25519_mb_reason"]) == \
        ("libsodium", "MESHMPC_X25519=libsodium")
    assert bench.main(["--rows", "100", "--protocol", "kkrt", "--repeats", "1", "--json"]) == 0
    assert "x25519_path" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_compare_spu_adds_secretflow_figures_and_ratio(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import subprocess

    seen: list[list[str]] = []

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        out = json.dumps({"spu_wall_s": 0.3, "spu_walls": [0.3], "spu_protocol": "PROTOCOL_ECDH",
                          "spu_curve": "CURVE_25519", "spu_intersection": 50})
        return subprocess.CompletedProcess(command, 0, out + "\n", "")

    monkeypatch.setattr(bench, "_one_run", _fake_run(50))
    monkeypatch.setattr(subprocess, "run", fake_run)  # the peer runner in bench._common
    assert bench.main(["--rows", "100", "--repeats", "1", "--json",
                       "--compare-spu", "/peer/python"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert seen[0][0] == "/peer/python" and seen[0][1].endswith("_spu_psi_peer.py")
    assert seen[0][2:] == ["100", "PROTOCOL_ECDH", "CURVE_25519", "1"]
    assert record["ratio"] == round(0.3 / record["wall_s"], 3) == 3.0
    with pytest.raises(SystemExit):
        bench.main(["--rows", "100", "--protocol", "kkrt", "--compare-spu", "/peer/python"])
