"""Every benchmark's command line parses: ``meshmpc bench NAME --help`` exits 0.

A dispatcher that pulls in other benchmarks' options (bench/ml.py) once defined --rows twice
and every ``meshmpc bench ml`` run failed before measuring anything.
"""

from __future__ import annotations

import contextlib
import importlib
import io

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
