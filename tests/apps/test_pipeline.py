"""The four-party pre-loan job against plaintext recomputation on pooled data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from meshmpc_credit.datagen import generate
from meshmpc_credit.pipeline import KEY, credit_job, party_features, train_logistic
from meshmpc_credit.plainmodel import auc

from meshmpc.linalg import PlainBackend
from meshmpc.net import run_parties

PARTIES = ["bank", "gov", "fin", "telco"]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("pipeline")
    generate(root / "data", rows=400, seed=11)
    results = run_parties(PARTIES, credit_job, str(root / "data"), str(root / "out"), 120, 2)
    return root, results


def _keys(path: Path) -> list[str]:
    return pq.read_table(path, columns=[KEY]).column(KEY).to_pylist()


def test_every_party_holds_the_four_way_intersection_in_one_order(job) -> None:
    root, results = job
    inputs = {p: _keys(root / "data" / f"{p}.parquet") for p in PARTIES}
    expected = [k for k in inputs["bank"] if all(k in set(inputs[p]) for p in PARTIES[1:])]
    for party in PARTIES:
        assert _keys(root / "out" / f"{party}.aligned.parquet") == expected
        assert results[party]["aligned_rows"] == len(expected)


def test_screening_finds_exactly_the_listed_applicants(job) -> None:
    root, results = job
    asked = set(_keys(root / "data" / "bank.parquet")[:120])
    screen = results["bank"]["screen"]
    for holder in ("fin", "gov"):
        listed = set(_keys(root / "data" / f"{holder}.risklist.parquet"))
        assert screen["hits"][holder] == len(asked & listed)
    assert all("screen" not in results[p] for p in ("gov", "fin", "telco"))


def test_secure_model_matches_the_plaintext_computation(job) -> None:
    root, results = job
    tables = {p: pq.read_table(root / "out" / f"{p}.aligned.parquet") for p in PARTIES}
    ones = np.ones((tables["bank"].num_rows, 1))
    x = np.hstack([*(party_features(tables[p]) for p in PARTIES), ones])
    y = tables["bank"].column("default_12m").to_numpy().astype(float).reshape(-1, 1)
    backend = PlainBackend()
    train_x, train_y = backend.constant(x[0::2]), backend.constant(y[0::2])
    weights = asyncio.run(train_logistic(backend, train_x, train_y, 2, 1.0))

    expected = auc(y[1::2, 0], (x[1::2] @ weights.value)[:, 0])
    assert results["bank"]["auc_joint"] == pytest.approx(expected, abs=0.01)
    assert results["bank"]["joint_features"] == x.shape[1] - 1
    assert "auc_joint" not in results["gov"]  # scores go to the bank only


def test_a_bad_input_stops_every_party_before_any_protocol(tmp_path: Path) -> None:
    from meshmpc.data.jobcheck import PeerInputError
    from meshmpc.errors import DataError

    generate(tmp_path / "data", rows=50, seed=3)
    fin = tmp_path / "data" / "fin.parquet"
    table = pq.read_table(fin)
    codes = table.column(KEY).to_pylist()
    codes[4] = "NOT-A-CREDIT-CODE"
    pq.write_table(table.set_column(0, KEY, pa.array(codes)), fin)

    async def run_all() -> list[BaseException | dict]:
        from meshmpc.net import Context
        from meshmpc.net.memory import MemoryMesh

        meshes = MemoryMesh.group(PARTIES)
        return await asyncio.gather(
            *(credit_job(Context(meshes[p]), str(tmp_path / "data"), str(tmp_path / "out"))
              for p in PARTIES), return_exceptions=True)

    outcomes = dict(zip(PARTIES, asyncio.run(run_all()), strict=True))
    assert isinstance(outcomes["fin"], DataError) and "credit_code" in str(outcomes["fin"])
    for party in ("bank", "gov", "telco"):
        assert isinstance(outcomes[party], PeerInputError) and "fin" in str(outcomes[party])
    assert not (tmp_path / "out" / "bank.aligned.parquet").exists()
