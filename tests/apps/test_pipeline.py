"""The four-party pre-loan job file on the job runner against plaintext recomputation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from meshmpc_credit.datagen import generate
from meshmpc_credit.demo import JOB_FILE
from meshmpc_credit.pipeline import KEY, party_features, train_logistic
from meshmpc_credit.plainmodel import auc

from meshmpc.jobs.errors import PeerStepError, StepFailedError
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.jobs.spec import read_yaml
from meshmpc.linalg import PlainBackend

PARTIES = ["bank", "gov", "fin", "telco"]


def preloan(applicants: int, steps: int) -> dict[str, Any]:
    raw = read_yaml(JOB_FILE)
    for step in raw["steps"]:
        if step["id"] == "screen":
            step["params"]["applicants"] = applicants
        if step["id"] == "rate":
            step["params"]["steps"] = steps
    return raw


def run(root: Path, applicants: int = 120, steps: int = 2) -> dict[str, Any]:
    return asyncio.run(run_job_in_memory(preloan(applicants, steps), root / "out",
                                         base_dir=root))


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("pipeline")
    generate(root / "data", rows=400, seed=11)
    results = run(root)
    for party, result in results.items():
        assert not isinstance(result, BaseException), f"{party}: {result}"
    return root, results


def _keys(path: Path) -> list[str]:
    return pq.read_table(path, columns=[KEY]).column(KEY).to_pylist()


def _aligned(root: Path, party: str) -> Path:
    return root / "out" / "preloan" / party / "align" / "aligned.parquet"


def report(results: dict, party: str, step: str) -> dict:
    return results[party]["steps"][step]["report"]


def test_every_party_holds_the_four_way_intersection_in_one_order(job) -> None:
    root, results = job
    inputs = {p: _keys(root / "data" / f"{p}.parquet") for p in PARTIES}
    expected = [k for k in inputs["bank"] if all(k in set(inputs[p]) for p in PARTIES[1:])]
    for party in PARTIES:
        assert _keys(_aligned(root, party)) == expected
        assert report(results, party, "align")["aligned_rows"] == len(expected)


def test_screening_finds_exactly_the_listed_applicants(job) -> None:
    root, results = job
    asked = set(_keys(root / "data" / "bank.parquet")[:120])
    screen = report(results, "bank", "screen")
    for holder in ("fin", "gov"):
        listed = set(_keys(root / "data" / f"{holder}.risklist.parquet"))
        assert screen["hits"][holder] == len(asked & listed)
    assert "hits" not in report(results, "fin", "screen")
    assert results["telco"]["steps"]["screen"]["status"] == "not-a-party"


def test_secure_model_matches_the_plaintext_computation(job) -> None:
    root, results = job
    tables = {p: pq.read_table(_aligned(root, p)) for p in PARTIES}
    ones = np.ones((tables["bank"].num_rows, 1))
    x = np.hstack([*(party_features(tables[p]) for p in PARTIES), ones])
    y = tables["bank"].column("default_12m").to_numpy().astype(float).reshape(-1, 1)
    backend = PlainBackend()
    train_x, train_y = backend.constant(x[0::2]), backend.constant(y[0::2])
    weights = asyncio.run(train_logistic(backend, train_x, train_y, 2, 1.0))

    expected = auc(y[1::2, 0], (x[1::2] @ weights.value)[:, 0])
    rate = report(results, "bank", "rate")
    assert rate["auc_joint"] == pytest.approx(expected, abs=0.01)
    assert rate["joint_features"] == x.shape[1] - 1
    assert "auc_joint" not in report(results, "gov", "rate")  # scores go to the bank only
    scores = pq.read_table(root / "out" / "preloan" / "bank" / "rate" / "scores.parquet")
    assert scores.column(KEY).to_pylist() == _keys(_aligned(root, "bank"))[1::2]
    assert not (root / "out" / "preloan" / "gov" / "rate" / "scores.parquet").exists()


def test_a_bad_input_stops_every_party_before_any_protocol(tmp_path: Path) -> None:
    from meshmpc.data.jobcheck import PeerInputError
    from meshmpc.errors import DataError

    generate(tmp_path / "data", rows=50, seed=3)
    fin = tmp_path / "data" / "fin.parquet"
    table = pq.read_table(fin)
    codes = table.column(KEY).to_pylist()
    codes[4] = "NOT-A-CREDIT-CODE"
    pq.write_table(table.set_column(0, KEY, pa.array(codes)), fin)

    outcomes = run(tmp_path)
    failed = outcomes["fin"]
    assert isinstance(failed, StepFailedError) and "'align'" in str(failed)
    assert isinstance(failed.__cause__, DataError) and "credit_code" in str(failed)
    for party in ("bank", "gov", "telco"):
        outcome = outcomes[party]
        assert isinstance(outcome, StepFailedError | PeerStepError), outcome
        assert "'align'" in str(outcome) and "fin" in str(outcome)
        if isinstance(outcome, StepFailedError):
            assert isinstance(outcome.__cause__, PeerInputError)
    assert not _aligned(tmp_path, "bank").exists()
    assert not list((tmp_path / "out" / "preloan" / "bank").glob(".tmp-*"))
