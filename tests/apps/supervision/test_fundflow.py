"""supervision.fundflow: the regulator's published cells equal a pandas group-by of the
pooled loans, no cell under the suppression thresholds appears, banks learn nothing,
noise is added only when asked, bad input is named."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from meshmpc_supervision.datagen import FLAGS, job_file, write_banks
from meshmpc_supervision.fundflow import discrete_laplace

from meshmpc.jobs.local import run_job_in_memory

TYPES = {"bank1": "city_commercial", "bank2": "city_commercial", "bank3": "rural",
         "bank4": "rural", "bank5": "large_state"}


def _run(tmp_path: Path, banks: int = 3, loans: int = 3000, **params: Any
         ) -> tuple[dict[str, Any], dict[str, Path], Path]:
    paths = write_banks(tmp_path / "data", banks, loans)
    job = job_file(tmp_path, paths, types=TYPES, triples="dealer", **params)
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out"))
    return results, paths, tmp_path / "out" / "fund-flow-monitoring"


def _pooled(paths: dict[str, Path]) -> pd.DataFrame:
    frames = []
    for party, path in paths.items():
        frame = pq.read_table(path).to_pandas()
        frame["institution_type"] = TYPES[party]
        frame["bank"] = party
        frame["flag"] = frame[list(FLAGS)].any(axis=1)
        frames.append(frame)
    pooled = pd.concat(frames)
    pooled["flagged_amount"] = pooled["amount_fen"].where(pooled["flag"], 0)
    return pooled.groupby(["region", "institution_type", "month"]).agg(
        loans=("loan_id", "size"), flagged=("flag", "sum"), amount_fen=("amount_fen", "sum"),
        flagged_amount_fen=("flagged_amount", "sum"), institutions=("bank", "nunique"))


@pytest.mark.parametrize("banks", [2, 5])
def test_published_cells_equal_pandas_and_small_cells_never_appear(
        tmp_path: Path, banks: int) -> None:
    results, paths, out = _run(tmp_path, banks=banks, min_count=10)
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    got = pq.read_table(out / "pboc" / "fundflow" / "fundflow.parquet").to_pandas()
    expected = _pooled(paths)
    passing = expected[(expected.loans >= 10) & (expected.institutions >= 2)]
    assert len(got) == len(passing) > 0
    got = got.set_index(["region", "institution_type", "month"]).sort_index()
    for column in ("loans", "flagged", "amount_fen", "flagged_amount_fen", "institutions"):
        assert (got[column] == passing.loc[got.index, column]).all(), column
    np.testing.assert_allclose(got["flagged_rate"], passing.flagged / passing.loans)
    assert (out / "pboc" / "fundflow" / "fundflow_report.html").read_text().count("<img") == 2
    for bank in paths:  # banks other than the co-aggregator learn nothing at all
        report = results[bank]["steps"]["fundflow"]["report"]
        assert report["role"] == ("co-aggregator" if bank == "bank1" else "bank")
        assert not (out / bank / "fundflow" / "fundflow.parquet").exists()


def test_a_cell_of_one_institution_is_suppressed_however_large(tmp_path: Path) -> None:
    results, paths, out = _run(tmp_path, banks=2, min_count=1, min_institutions=3)
    assert results["pboc"]["steps"]["fundflow"]["report"]["published"] == 0
    assert len(pq.read_table(out / "pboc" / "fundflow" / "fundflow.parquet")) == 0


def test_noise_only_with_epsilon_and_of_the_documented_scale(tmp_path: Path) -> None:
    results, paths, out = _run(tmp_path, epsilon=2.0, min_count=10, amount_clip=10**9)
    assert results["pboc"]["steps"]["fundflow"]["report"]["epsilon"] == 2.0
    got = pq.read_table(out / "pboc" / "fundflow" / "fundflow.parquet").to_pandas()
    expected = _pooled(paths).loc[got.set_index(["region", "institution_type",
                                                 "month"]).index]
    diff = got["loans"].to_numpy() - expected["loans"].to_numpy()
    assert diff.any() and np.abs(diff).mean() < 10  # scale 4/eps = 2 loans
    draws = discrete_laplace(200_000, 0.5)
    q = np.exp(-0.5)
    assert abs(draws.mean()) < 0.05
    assert abs(draws.var() - 2 * q / (1 - q) ** 2) < 0.5  # the two-sided geometric's variance


def test_a_region_outside_the_grid_is_named_with_its_row(tmp_path: Path) -> None:
    paths = write_banks(tmp_path / "data", 2, 500)
    table = pq.read_table(paths["bank2"]).to_pandas()
    table.loc[41, "region"] = "99"
    table.to_parquet(paths["bank2"])
    job = job_file(tmp_path, paths, types=TYPES, triples="dealer")
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out"))
    message = str(results["bank2"])
    assert "party bank2" in message and "column region, row 42" in message
    assert "'99' is not in the job's region list" in message
    assert all(isinstance(r, BaseException) for r in results.values())


def test_job_files_name_their_inputs_absolutely(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`make demo` passes a relative --out; the job file's folder is where relative inputs
    resolve, so paths written relative to the working folder were looked up twice nested."""
    import yaml

    monkeypatch.chdir(tmp_path)
    paths = write_banks(Path("out/sup/data"), 2, 50)
    spec = yaml.safe_load(job_file(Path("out/sup"), paths).read_text())
    for party in paths:
        data = Path(spec["parties"][party]["data"])
        assert data.is_absolute() and data.exists()


def test_amount_quantiles_are_the_buckets_of_the_pooled_order_statistics(
        tmp_path: Path) -> None:
    """The published quantile of a cell is the middle of the bucket that holds the
    ceil(q N)-th smallest pooled amount, for each quantile asked."""
    from meshmpc_supervision.fundflow import bucket_middle, bucket_of

    quantiles = [0.1, 0.5, 0.9]
    results, paths, out = _run(tmp_path, banks=3, quantiles=quantiles, quantile_buckets=32)
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    got = pq.read_table(out / "pboc" / "fundflow" / "fundflow.parquet").to_pandas()
    got = got.set_index(["region", "institution_type", "month"])
    edges = np.geomspace(1e6, 1e12, 33)
    frames = []
    for party, path in paths.items():
        frame = pq.read_table(path).to_pandas()
        frame["institution_type"] = TYPES[party]
        frames.append(frame)
    pooled = pd.concat(frames).groupby(["region", "institution_type", "month"])
    checked = 0
    for key, row in got.iterrows():
        amounts = np.sort(pooled.get_group(key).amount_fen.to_numpy())
        for q in quantiles:
            kth = amounts[int(np.ceil(q * len(amounts))) - 1]
            expected = bucket_middle(edges, bucket_of(np.array([kth]), edges))[0]
            assert row[f"amount_p{round(q * 100)}_fen"] == expected, (key, q)
            checked += 1
    assert checked > 30
    spread = got["amount_p90_fen"] > got["amount_p10_fen"]
    assert spread.mean() > 0.5  # the quantiles are not one constant


def test_quantiles_are_refused_under_differential_privacy(tmp_path: Path) -> None:
    results, _, _ = _run(tmp_path, banks=2, loans=200, epsilon=1.0, quantiles=[0.5])
    assert all("params.quantiles" in str(r) for r in results.values())


def test_demo_command_runs_an_application_and_copies_its_report(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    from meshmpc_supervision.cli import main

    assert main(["demo", "--only", "fundflow", "--banks", "2", "--loans", "400",
                 "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "fund-flow monitoring" in printed and "related-party" not in printed
    page = (tmp_path / "fundflow_report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "信贷资金流向监测" in page
