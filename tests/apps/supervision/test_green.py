"""supervision.green: every bank's score equals the plaintext computation on the pooled
data; the regulator sees scores (and points only when asked), each bank its own score."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from meshmpc_supervision.datagen import green_job_file, write_green
from meshmpc_supervision.green import DEFAULT_BANDS, INDICATORS, Bands

from meshmpc.jobs.local import run_job_in_memory

sys.path.insert(0, str(Path(__file__).parent))
from supervision_views import assert_uniform_words, run_recorded  # noqa: E402
from supervision_views import step_messages as recorded_step  # noqa: E402

YEAR = 2025
BANDS = {name: Bands(spec["direction"] == "higher", tuple(map(float, spec["thresholds"])),
                     tuple(spec["points"])) for name, spec in DEFAULT_BANDS.items()}


def _plaintext_points(firms: Path, gov: Path, path: Path) -> dict[str, int]:
    """The four indicators' points of one bank, from the pooled data in pandas."""
    loans = pq.read_table(path).to_pandas()
    registry = set(pq.read_table(firms).column("credit_code").to_pylist())
    carbon = pq.read_table(gov).to_pandas().set_index("credit_code").carbon_kg_per_10k_yuan
    now = loans[loans.year == YEAR]
    green_now = now[now.green]
    before = loans[(loans.year == YEAR - 1) & loans.green].amount_fen.sum()
    values = {"green_share": green_now.amount_fen.sum() / now.amount_fen.sum(),
              "growth": green_now.amount_fen.sum() / before - 1 if before else None,
              "npl_ratio": green_now[green_now.npl].amount_fen.sum()
              / green_now.amount_fen.sum()}
    inside = green_now[green_now.credit_code.isin(registry)]
    per_firm = inside.groupby("credit_code").amount_fen.sum() // 100
    covered = per_firm[per_firm.index.isin(carbon.index)]
    den = int(covered.sum())
    num = int((covered * carbon.loc[covered.index]).sum())
    points = {name: BANDS[name].score(values[name]) for name in values}
    carbon_bands = BANDS["carbon_intensity"]
    points["carbon_intensity"] = sum(p for t, p in zip(carbon_bands.thresholds,
                                                       carbon_bands.points, strict=True)
                                     if num <= t * den) if den else 0
    return points


@pytest.mark.parametrize("security,publish", [("dishonest-majority", "score"),
                                              ("honest-majority", "points")])
def test_scores_equal_the_plaintext_evaluation(tmp_path: Path, security: str,
                                               publish: str) -> None:
    firms, gov, paths = write_green(tmp_path / "data", 4, 3000, 4000, year=YEAR)
    triples = "dealer" if security == "dishonest-majority" else "none"
    job = green_job_file(tmp_path, firms, gov, paths, year=YEAR, security=security,
                         publish=publish, triples=triples)
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out"))
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    out = tmp_path / "out" / "green-finance-evaluation"
    table = pq.read_table(out / "pboc" / "green" / "green_scores.parquet").to_pandas()
    expected = {bank: _plaintext_points(firms, gov, path) for bank, path in paths.items()}
    totals = pd.Series({b: sum(p.values()) for b, p in expected.items()})
    assert len(set(totals)) > 1  # the reference data tells the banks apart
    got = table.set_index("institution")
    assert (got.score == totals.loc[got.index]).all()
    assert (got["rank"] == totals.rank(method="min", ascending=False).loc[got.index]).all()
    point_columns = [c for c in table.columns if c.startswith("points_")]
    if publish == "score":
        assert point_columns == []
    else:
        assert sorted(point_columns) == sorted(f"points_{n}" for n in INDICATORS)
        for bank, points in expected.items():
            for name, value in points.items():
                assert got.loc[bank, f"points_{name}"] == value
    for bank in paths:
        mine = pq.read_table(out / bank / "green" / "my_green_score.parquet").to_pylist()[0]
        assert mine["score"] == totals[bank]
        assert mine["points_carbon_intensity"] == expected[bank]["carbon_intensity"]
    assert not (out / "gov" / "green" / "green_scores.parquet").exists()
    assert (out / "pboc" / "green" / "green_report.html").exists()


def test_a_bank_without_covered_green_lending_gets_no_carbon_points(tmp_path: Path) -> None:
    firms, gov, paths = write_green(tmp_path / "data", 2, 500, 600, year=YEAR)
    loans = pq.read_table(paths["bank2"]).to_pandas()
    loans["credit_code"] = "92" + loans.index.astype(str).str.zfill(16)  # outside the registry
    pq.write_table(pa.Table.from_pandas(loans, preserve_index=False), paths["bank2"])
    job = green_job_file(tmp_path, firms, gov, paths, year=YEAR, publish="points",
                         triples="dealer")
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out"))
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    table = pq.read_table(tmp_path / "out" / "green-finance-evaluation" / "pboc" / "green"
                          / "green_scores.parquet").to_pandas().set_index("institution")
    assert table.loc["bank2", "points_carbon_intensity"] == 0
    assert table.loc["bank1", "points_carbon_intensity"] == \
        _plaintext_points(firms, gov, paths["bank1"])["carbon_intensity"]


def test_bad_input_names_party_file_column_and_row(tmp_path: Path) -> None:
    firms, gov, paths = write_green(tmp_path / "data", 2, 300, 300, year=YEAR)
    frame = pq.read_table(gov).to_pandas()
    frame.loc[4, "carbon_kg_per_10k_yuan"] = -3
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), gov)
    job = green_job_file(tmp_path, firms, gov, paths, year=YEAR, triples="dealer")
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out"))
    message = str(results["gov"])
    assert isinstance(results["gov"], BaseException)
    assert "party gov" in message and "carbon_kg_per_10k_yuan" in message and "row 5" in message
    bad = green_job_file(tmp_path, firms, gov, paths, year=YEAR,
                         indicators={"esg": {"direction": "higher"}})
    results = asyncio.run(run_job_in_memory(bad, tmp_path / "out2"))
    assert all("params.indicators.esg" in str(r) for r in results.values())


def test_bands_add_points_for_each_threshold_met() -> None:
    higher = Bands(True, (0.1, 0.2), (3, 4))
    lower = Bands(False, (900, 300), (5, 10))
    assert [higher.score(v) for v in (0.05, 0.1, 0.25, None)] == [0, 3, 7, 0]
    assert [lower.score(v) for v in (1000, 900, 299)] == [0, 5, 15]
    assert np.isfinite(sum(BANDS["green_share"].points))


def test_views_the_government_receives_nothing_and_shares_look_random(tmp_path: Path) -> None:
    """Every message each party receives, recorded: the government gets no step message;
    the co-aggregator's masked vectors have the bit statistics of uniform words although
    the banks' vectors are mostly zero; the regulator gets 16-byte seeds; a bank outside
    the suite gets one element from each compute party, which add up to its score."""
    firms, gov, paths = write_green(tmp_path / "data", 3, 2000, 800, year=YEAR)
    job = green_job_file(tmp_path, firms, gov, paths, year=YEAR, triples="dealer")
    views = run_recorded(job, ["pboc", "gov", *paths], tmp_path / "out")

    def step_messages(party: str, suffix: str = "") -> list[tuple[str, object]]:
        return recorded_step(views, party, "green", suffix)

    assert step_messages("gov") == []
    masked = step_messages("bank1", "/masked")
    assert sorted(peer for peer, _ in masked) == ["bank2", "bank3", "gov"]
    for _, words in masked:
        assert_uniform_words(words)
    seeds = step_messages("pboc", "/seed")
    assert len(seeds) == 4 and all(isinstance(s, bytes) and len(s) == 16 for _, s in seeds)
    out = tmp_path / "out" / "green-finance-evaluation"
    for bank in ("bank2", "bank3"):
        own = step_messages(bank)
        assert sorted(peer for peer, _ in own) == ["bank1", "pboc"]
        parts = [np.asarray(obj).view(np.uint64) for _, obj in own]
        assert all(p.shape == (1,) for p in parts)
        score = pq.read_table(out / bank / "green" / "my_green_score.parquet").column(
            "score")[0].as_py()
        assert int((parts[0] + parts[1]).view(np.int64)[0]) == score
