"""credit.inloan: alerts and PSI equal a plaintext (pandas) recomputation; receiver-only view."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from meshmpc_credit.datagen import generate
from meshmpc_credit.inloan import feed
from meshmpc_credit.inloan.monitor import MonitorParams, alerts, grades
from meshmpc_credit.inloan.signals import (
    MonitorInputError,
    bank_points,
    list_hits,
    partner_points,
    read_monthly,
)

from meshmpc.crypto.oprf import OprfKey
from meshmpc.jobs.artefacts import read_local_table
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.jobs.spec import read_yaml
from meshmpc.net import Context
from meshmpc.net.memory import MemoryMesh

JOB = Path(__file__).parents[2] / "apps/credit/src/meshmpc_credit/jobs/inloan.yaml"
PARTNERS = ("gov", "fin", "telco")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("inloan")
    generate(root / "data", rows=300, seed=5)
    results = asyncio.run(run_job_in_memory(read_yaml(JOB), root / "out", base_dir=root))
    for party, result in results.items():
        assert not isinstance(result, BaseException), f"{party}: {result}"
    return root, results


def plaintext_scores(root: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    """The joint score and flags computed with every party's data in one place."""
    bank = read_monthly("bank", root / "data/bank.monthly.parquet")
    score = bank_points(bank)
    flags = np.zeros(score.shape, np.uint8)
    held = np.ones(score.shape[0], bool)
    index = {k: i for i, k in enumerate(bank.keys.to_pylist())}
    for party in PARTNERS:
        data = read_monthly(party, root / f"data/{party}.monthly.parquet")
        points, f = partner_points(data)
        f = f | list_hits(party, root / f"data/{party}.risklist.parquet", data.keys, data.months)
        rows = np.array([index.get(k, -1) for k in data.keys.to_pylist()])
        part = np.full(score.shape, np.nan)
        part[rows[rows >= 0]] = points[rows >= 0]
        flags[rows[rows >= 0]] |= f[rows >= 0]
        held &= ~np.isnan(part[:, 0])
        score = score + np.nan_to_num(part)
    score[~held] = np.nan
    return bank.keys, score, flags


def test_joint_scores_and_alerts_equal_the_plaintext_recomputation(run) -> None:
    root, results = run
    keys, score, flags = plaintext_scores(root)
    monitor = read_local_table(root / "out/inloan/bank/monitor/monitor.parquet").to_pandas()
    got = monitor["score"].to_numpy().reshape(score.shape)
    assert np.array_equal(np.isnan(got), np.isnan(score))
    assert np.nanmax(np.abs(got - score)) < 1e-3
    assert np.array_equal(monitor["flags"].to_numpy().reshape(score.shape), flags)
    expected = alerts(score, flags, MonitorParams())
    table = read_local_table(root / "out/inloan/bank/monitor/alerts.parquet").to_pandas()
    for name, grid in expected.items():
        rows, cols = np.nonzero(grid)
        want = sorted(zip([keys[i].as_py() for i in rows], (cols + 1).tolist(), strict=True))
        have = table[table[name]]
        assert sorted(zip(have["credit_code"], have["month"], strict=True)) == want, name
    report = results["bank"]["steps"]["monitor"]["report"]
    assert sum(m["grade_drop"] for m in report["by_month"]) == int(expected["grade_drop"].sum())
    assert sum(m["grade_drop"] for m in report["by_month"]) > 0


def pandas_psi(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    edges = np.unique(expected.quantile(np.linspace(0, 1, bins + 1)[1:-1]).to_numpy())
    cut = [-np.inf, *edges, np.inf]
    e = pd.cut(expected, cut, right=False).value_counts(normalize=True, sort=False)
    a = pd.cut(actual, cut, right=False).value_counts(normalize=True, sort=False)
    e, a = e.clip(lower=1e-4), a.clip(lower=1e-4)
    return float(((a - e) * np.log(a / e)).sum())


def test_score_and_feature_psi_equal_pandas(run) -> None:
    root, results = run
    report = results["bank"]["steps"]["monitor"]["report"]
    monitor = read_local_table(root / "out/inloan/bank/monitor/monitor.parquet").to_pandas()
    by_month = monitor.pivot(index="credit_code", columns="month", values="score")
    for entry in report["score_psi"][1:]:
        m = entry["month"]
        want = pandas_psi(by_month[m - 1].dropna(), by_month[m].dropna())
        assert entry["psi"] == pytest.approx(want, abs=1e-12)
    gov = pq.read_table(root / "data/gov.monthly.parquet").to_pandas()
    tax = gov.pivot(index="credit_code", columns="month", values="tax_paid")
    got = report["feature_psi"]["gov.tax_paid"]
    for m in range(2, 13):
        assert got[m - 1] == pytest.approx(pandas_psi(tax[m - 1], tax[m]), abs=1e-12)


def test_grades_reject_non_monotone_cutoffs() -> None:
    assert grades(np.array([600.0, 540.0, np.nan]), (580.0, 555.0, 530.0, 500.0)).tolist() \
        == [0, 2, -1]
    with pytest.raises(ValueError, match="decrease strictly"):
        grades(np.array([1.0]), (500.0, 550.0))


def _views(book: list[str], partner_keys: list[str]) -> list[tuple[str, Any]]:
    """Everything the partner receives in set-up and one month, with the bank's book."""
    meshes = MemoryMesh.group(["bank", "gov"])
    seen: list[tuple[str, Any]] = []
    deliver = meshes["gov"].mailbox.deliver

    def record(sender: str, tag: str, obj: Any) -> None:
        seen.append((tag, obj))
        deliver(sender, tag, obj)

    meshes["gov"].mailbox.deliver = record
    bank_ctx, gov_ctx = Context(meshes["bank"]), Context(meshes["gov"])
    key = OprfKey.generate()

    async def bank() -> np.ndarray:
        prf = await feed.open_book(bank_ctx, "gov", book, 64)
        tags, sealed = await feed.recv_month(bank_ctx, "gov", 1)
        return feed.open_month(prf, tags, sealed, 1)[1]

    async def partner() -> None:
        await feed.answer_book(gov_ctx, "bank", key, 64)
        prf = key.evaluate_rows(feed.key_items(partner_keys))
        records = np.arange(len(partner_keys) * 16, dtype=np.uint8).reshape(-1, 16)
        tags, sealed = feed.seal_month(prf, records, 1)
        await feed.send_month(gov_ctx, "bank", tags, sealed, 1)

    async def both() -> np.ndarray:
        opened, _ = await asyncio.gather(bank(), partner())
        return opened

    opened = asyncio.run(both())
    if book and book[0] in partner_keys:
        assert opened[0].tolist() == list(range(partner_keys.index(book[0]) * 16,
                                                partner_keys.index(book[0]) * 16 + 16))
    return seen


def test_partner_view_is_independent_of_the_bank_book() -> None:
    partner_keys = [f"91{i:016d}" for i in range(50)]
    view_a = _views(partner_keys[:20], partner_keys)
    view_b = _views([f"X{i}" for i in range(5)], partner_keys)
    assert [(tag, np.asarray(m).shape) for tag, m in view_a] == \
        [(tag, np.asarray(m).shape) for tag, m in view_b]
    again = _views(partner_keys[:20], partner_keys)
    assert not np.array_equal(np.asarray(view_a[0][1]), np.asarray(again[0][1]))


def test_bad_monthly_file_names_party_file_and_column(tmp_path: Path) -> None:
    files = generate(tmp_path / "data", rows=40, seed=3)
    path = tmp_path / "data/gov.monthly.parquet"
    table = pq.read_table(path).drop_columns(["new_lawsuits"])
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(MonitorInputError, match=r"party gov, file .*bad.parquet: column "
                                                r"'new_lawsuits' is missing"):
        read_monthly("gov", tmp_path / "bad.parquet")
    assert files


def test_one_blinding_serves_every_partner() -> None:
    """open_books blinds the book once: both partners receive the same uniform points (no
    key in clear), and each partner's rows equal its own PRF of the keys (distinct keys,
    distinct rows)."""
    book = [f"91{i:016d}" for i in range(40)]
    meshes = MemoryMesh.group(["bank", "gov", "fin"])
    seen: dict[str, np.ndarray] = {}
    keys = {p: OprfKey.generate() for p in ("gov", "fin")}
    for party in ("gov", "fin"):
        deliver = meshes[party].mailbox.deliver

        def record(sender: str, tag: str, obj: Any, party: str = party,
                   deliver: Any = deliver) -> None:
            if tag.endswith("blinded"):
                seen[party] = np.asarray(obj).copy()
            deliver(sender, tag, obj)

        meshes[party].mailbox.deliver = record

    async def run() -> dict[str, np.ndarray]:
        ctx = Context(meshes["bank"])
        opened, *_ = await asyncio.gather(
            feed.open_books({p: ctx for p in keys}, book, 64),
            *(feed.answer_book(Context(meshes[p]), "bank", keys[p], 64) for p in keys))
        return opened

    opened = asyncio.run(run())
    assert np.array_equal(seen["gov"], seen["fin"]) and seen["gov"].size == 64 * 32
    assert not any(k.encode() in seen["gov"].tobytes() for k in book)
    for party, key in keys.items():
        assert np.array_equal(opened[party], key.evaluate_rows(feed.key_items(book)))
    assert not np.array_equal(opened["gov"], opened["fin"])
