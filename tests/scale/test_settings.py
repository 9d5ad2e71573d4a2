"""Where a party's ``ray:`` setting comes from, and what a wrong one says."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshmpc.data.vault import Vault
from meshmpc.psi.components import Scratch, _pair_job
from meshmpc.psi.job import job_from_options
from meshmpc.scale import RayOptions, ScaleConfigError


def test_psi_align_party_params_reach_the_pairwise_job(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path, Vault.ephemeral(), {"address": "auto", "workers": 3})
    job = _pair_job(tmp_path / "bank.csv", "credit_code", "gov", "bank", "kkrt",
                    tmp_path / "pair.parquet", None, scratch)
    assert job.ray == RayOptions(address="auto", workers=3)
    assert job.agreement(["bank", "gov"])["scale_out"] is True
    plain = _pair_job(tmp_path / "bank.csv", "credit_code", "gov", "bank", "kkrt",
                      tmp_path / "pair.parquet", None, Scratch(tmp_path, Vault.ephemeral()))
    assert plain.ray is None and plain.agreement(["bank", "gov"])["scale_out"] is False


def test_a_bad_setting_in_job_options_names_the_field(tmp_path: Path) -> None:
    options = {"input": str(tmp_path / "a.csv"), "keys": ["k"], "peers": ["gov"]}
    with pytest.raises(ScaleConfigError, match=r"ray\.workers"):
        job_from_options({**options, "ray": {"workers": "many"}})
    with pytest.raises(ScaleConfigError, match="did you mean"):
        job_from_options({**options, "ray": {"adress": "auto"}})
    assert job_from_options(options).ray is None
