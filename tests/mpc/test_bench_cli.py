"""``meshmpc bench mpc`` prints the JSON fields issue 6 names, for every op and suite."""

from __future__ import annotations

import json

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
