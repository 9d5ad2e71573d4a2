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
from meshmpc_credit.pipeline import KEY

from meshmpc.jobs.artefacts import read_local_table
from meshmpc.jobs.errors import PeerStepError, StepFailedError
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.jobs.spec import read_yaml
from meshmpc.ml.logistic import LogisticConfig, plaintext_reference
from meshmpc.ml.metrics import auc

PARTIES = ["bank", "gov", "fin", "telco"]


EPOCHS = 4


def preloan(applicants: int, epochs: int) -> dict[str, Any]:
    raw = read_yaml(JOB_FILE)
    for step in raw["steps"]:
        if step["id"] == "screen":
            step["params"]["applicants"] = applicants
        if step["id"] == "lr":
            step["params"]["epochs"] = epochs
    return raw


def run(root: Path, applicants: int = 120, epochs: int = EPOCHS) -> dict[str, Any]:
    return asyncio.run(run_job_in_memory(preloan(applicants, epochs), root / "out",
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
    out = root / "out" / "preloan"
    blocks = [read_local_table(out / p / "select" / "features.parquet").to_pandas()
              for p in PARTIES]
    y = blocks[0]["default_12m"].to_numpy()
    x = np.hstack([b.drop(columns=[c for c in ("default_12m",) if c in b]).to_numpy(float)
                   for b in blocks])
    roles = pq.read_table(out / "bank" / "lr" / "split.parquet").column("role").to_numpy()
    widths = [len(b.columns) - ("default_12m" in b) for b in blocks]
    weights, intercept, _, _ = plaintext_reference(
        x, y, roles, LogisticConfig(epochs=EPOCHS, batch_size=1024, l2=1.0), widths)
    test = roles == 2
    expected = auc(y[test], x[test] @ weights + intercept)
    evaluation = report(results, "bank", "eval")
    assert evaluation["auc"] == pytest.approx(expected, abs=0.005)
    assert evaluation["auc"] > 0.6
    assert report(results, "gov", "eval") == {}  # scores and AUC go to the bank only
    assert not (out / "gov" / "card" / "scores.parquet").exists()


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
