"""``meshmpc bench pir --setup-breakdown``: every timed stage of a real build is
reported, the OPRF inside the PRF stage, and the timing wrappers are removed after."""

from __future__ import annotations

from meshmpc_bench.pir import setup_breakdown

from meshmpc.crypto import oprf
from meshmpc.pir import lwe


def test_setup_breakdown_reports_the_stages_and_restores_the_functions() -> None:
    multiply, hint = oprf.multiply, lwe.hint
    out = setup_breakdown(200, 32)
    stages = out["stages"]
    assert {"prf_outputs", "multiply", "hash_to_group_many", "hint", "seal_all"} <= set(stages)
    assert stages["multiply"]["wall_s"] <= stages["prf_outputs"]["wall_s"] + 0.01
    assert out["wall_s"] >= stages["prf_outputs"]["wall_s"]
    assert oprf.multiply is multiply and lwe.hint is hint
