"""ml.mlp as a step of a four-party job file on the job runner (in memory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from meshmpc_credit.datagen import generate

from meshmpc.ml.metrics import auc

JOB = {
    "name": "mlp-job",
    "security": "honest-majority",
    "parties": {
        "bank": {"data": "data/bank.parquet", "key": "credit_code", "label": "default_12m"},
        "gov": {"data": "data/gov.parquet", "key": "credit_code"},
        "fin": {"data": "data/fin.parquet", "key": "credit_code"},
        "telco": {"data": "data/telco.parquet", "key": "credit_code"},
    },
    "steps": [
        {"id": "align", "component": "psi.align", "params": {"protocol": "kkrt"}},
        {"id": "bins", "component": "ml.binning", "after": ["align"],
         "params": {"method": "quantile", "bins": 5},
         "party_params": {"bank": {"exclude": ["days_overdue"]}}},
        {"id": "select", "component": "ml.select", "after": ["bins"],
         "params": {"iv_min": 0.05, "corr_max": 1.0}},
        {"id": "nn", "component": "ml.mlp", "after": ["select"],
         "params": {"layers": [16, 8], "epochs": 3, "batch_size": 64, "learning_rate": 0.05,
                    "validation": 0.2}},
        {"id": "score", "component": "ml.predict", "after": ["nn"]},
        {"id": "eval", "component": "ml.evaluate", "after": ["score"]},
    ],
}


@pytest.mark.slow
def test_mlp_step_runs_in_a_four_party_job(tmp_path: Path) -> None:
    from meshmpc.jobs.local import run_job_in_memory

    generate(tmp_path / "data", rows=1500, seed=11)
    results = asyncio.run(run_job_in_memory(JOB, tmp_path / "out", base_dir=tmp_path))
    for party, result in results.items():
        assert not isinstance(result, BaseException), f"{party}: {result}"
    out = tmp_path / "out" / "mlp-job"
    trained = pq.read_table(out / "bank" / "nn" / "scores.parquet")
    scored = pq.read_table(out / "bank" / "score" / "scores.parquet")
    # ml.predict reproduces the training step's logits from the shared model
    z_train = trained.column("z").to_numpy()
    z_score = scored.column("z").to_numpy()
    assert abs(z_train - z_score).max() < 2e-3
    assert not (out / "gov" / "nn" / "scores.parquet").exists()
    evaluation = results["bank"]["steps"]["eval"]["report"]
    labels = pq.read_table(out / "bank" / "align" / "aligned.parquet").column(
        "default_12m").to_numpy()
    roles = trained.column("role").to_numpy()
    test = roles == 2
    assert abs(evaluation["auc"] - auc(labels[test], z_train[test])) < 1e-9
    # the weights start from fresh OS randomness, so held-out AUC on a few hundred rows
    # varies from run to run; the fit on the training rows does not
    assert auc(labels[roles == 0], z_train[roles == 0]) > 0.7
