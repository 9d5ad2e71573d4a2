"""``meshmpc bench pir --setup-breakdown``: every timed stage of a real build is
reported and the timing wrappers are removed after."""

from __future__ import annotations

from meshmpc_bench.pir import setup_breakdown

from meshmpc.pir import lwe, table


def test_setup_breakdown_reports_the_stages_and_restores_the_functions() -> None:
    prf_outputs, hint = table.prf_outputs, lwe.hint
    out = setup_breakdown(200, 32)
    stages = out["stages"]
    assert {"prf_outputs", "hint", "seal_all", "_write_slots"} <= set(stages)
    assert out["wall_s"] >= stages["prf_outputs"]["wall_s"] + stages["hint"]["wall_s"]
    assert table.prf_outputs is prf_outputs and lwe.hint is hint
