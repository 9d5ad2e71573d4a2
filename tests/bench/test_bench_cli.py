"""Every benchmark's command line parses: ``meshmpc bench NAME --help`` exits 0.

A dispatcher that pulls in other benchmarks' options (bench/ml.py) once defined --rows twice
and every ``meshmpc bench ml`` run failed before measuring anything.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from pathlib import Path

import pytest

from meshmpc.benchcli import available


@pytest.mark.parametrize("name", available())
def test_help_parses(name: str) -> None:
    module = importlib.import_module(f"meshmpc_bench.{name}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert "--json" in out.getvalue()


def test_every_party_job_a_benchmark_names_exists() -> None:
    """Benchmarks run ``"meshmpc_bench.<module>:<function>"`` in every party process; a
    module renamed without its target string failed only when the benchmark ran."""
    import meshmpc_bench

    folder = Path(meshmpc_bench.__path__[0])
    targets = set()
    for source in folder.glob("*.py"):
        targets.update(re.findall(r'"(meshmpc_bench\.[\w.]+):(\w+)"', source.read_text()))
    assert ("meshmpc_bench._ml_mlp", "party_job") in targets
    for module_name, function in sorted(targets):
        assert hasattr(importlib.import_module(module_name), function), (module_name, function)
