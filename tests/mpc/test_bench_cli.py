"""``meshmpc bench mpc`` prints the JSON fields issue 6 names, for every op and suite."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from meshmpc_bench import mpc as bench

FIELDS = {"bench", "suite", "triples", "op", "n", "transport", "wall_s", "bytes_sent"}


@pytest.mark.parametrize("suite,triples", [("semi2k", "dealer"), ("rep3", "none"),
                                           ("semi2k", "ot")])
@pytest.mark.parametrize("op", ["mul", "less", "sigmoid", "matmul", "lr_step"])
def test_bench_prints_one_json_line(capsys: pytest.CaptureFixture[str], suite: str,
                                    triples: str, op: str) -> None:
    n = 8 if op in ("matmul", "lr_step") and triples == "ot" else 40
    argv = ["--suite", suite, "--triples", triples, "--op", op, "--n", str(n),
            "--repeats", "1", "--json"]
    assert bench.main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record.keys() >= FIELDS
    assert (record["suite"], record["triples"], record["op"], record["n"]) == (
        suite, triples, op, n)
    assert record["transport"] == "memory" and record["wall_s"] > 0
    assert record["bytes_sent"] > 0


def test_rep3_refuses_triples() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--suite", "rep3", "--triples", "dealer", "--n", "4"])


def test_bench_reports_only_what_it_measured() -> None:
    import inspect

    source = inspect.getsource(bench)
    assert "speedup_vs" not in source and "SPU_SECONDS" not in source


@pytest.mark.parametrize("op", ["trunc", "trunc_exact"])
def test_bench_truncation_with_four_parties_and_ot(capsys: pytest.CaptureFixture[str],
                                                   op: str) -> None:
    argv = ["--suite", "semi2k", "--triples", "ot", "--parties", "4", "--op", op,
            "--n", "64", "--repeats", "1", "--json"]
    assert bench.main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert (record["op"], record["parties"]) == (op, 4)
    # 64 daBits per element, each from correlated OTs: far more than one opening (8 B)
    assert record["bytes_sent"] > 64 * 64 and record["cpu_s"] > 0


def _fake_spu(tmp_path: Path, body: str) -> str:
    """An executable standing in for a peer interpreter (runs no SPU)."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_compare_spu_adds_the_peer_figures_and_ratio(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    seen = tmp_path / "argv"
    fake = _fake_spu(tmp_path, f'echo "$2 $3 $4 $5 $6" > {seen}; '
                               'echo \'{"spu_wall_s": 3.0, "spu_cpu_s": 2.5}\'')
    argv = ["--suite", "semi2k", "--triples", "ot", "--op", "mul", "--n", "32",
            "--repeats", "1", "--json", "--compare-spu", fake]
    assert bench.main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert seen.read_text().split() == ["mul", "32", "CHEETAH", "2", "1"]
    assert record["spu_wall_s"] == 3.0 and record["spu_cpu_s"] == 2.5
    assert record["ratio"] == pytest.approx(3.0 / record["wall_s"], rel=1e-2)


def test_compare_spu_picks_the_matching_protocol() -> None:
    def protocol(suite: str, triples: str, parties: int) -> str:
        args = argparse.Namespace(suite=suite, triples=triples, spu_protocol=None)
        return bench.spu_protocol(args, parties)

    assert protocol("semi2k", "ot", 2) == "CHEETAH"
    assert protocol("semi2k", "ot", 4) == "SEMI2K"
    assert protocol("semi2k", "dealer", 2) == "SEMI2K"
    assert protocol("rep3", "none", 3) == "ABY3"


def test_compare_spu_without_spu_says_what_to_do(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    argv = ["--op", "mul", "--n", "8", "--repeats", "1", "--json", "--compare-spu"]
    assert bench.main([*argv, sys.executable]) == 1  # our own venv has no spu
    record = json.loads(capsys.readouterr().out.strip())
    assert record["wall_s"] > 0 and "holds spu" in record["spu_error"]
    assert bench.main([*argv, str(tmp_path / "no-such-python")]) == 1
    assert "cannot run it" in json.loads(capsys.readouterr().out.strip())["spu_error"]
