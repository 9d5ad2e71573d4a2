"""Backtest figures equal an independent pandas recomputation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from meshmpc_credit.strategy.backtest import BAND_POINTS, Case, backtest
from meshmpc_credit.strategy.context import build_context, screen_entry
from meshmpc_credit.strategy.document import DEFAULT_STRATEGY, CompiledStrategy

LGD = 0.45


def history(n: int = 400, seed: int = 3) -> list[Case]:
    """Synthetic past applicants: outcome known only where the champion approved."""
    rng = np.random.default_rng(seed)
    champion = CompiledStrategy("preloan", 1, json.loads(DEFAULT_STRATEGY.read_text()))
    cases = []
    for _ in range(n):
        score = float(np.round(rng.normal(630, 45), 2))
        bank = {"loan_amount": float(rng.integers(1, 40) * 50_000),
                "avg_deposit_balance_6m": float(rng.integers(0, 30) * 10_000)}
        lists = {}
        if rng.random() < 0.15:
            lists["fin"] = screen_entry({"list_type": str(rng.choice(
                ["fraud", "multi_lending", "malicious_default"]))})
        context = build_context(bank, lists, score, [])
        pd_true = 1 / (1 + np.exp((score - 560) / 25))
        approved = champion.evaluate(context).decision == "approve"
        cases.append(Case(context, int(rng.random() < pd_true) if approved else None))
    return cases


def frame(cases: list[Case], strategy: CompiledStrategy, tag: str) -> pd.DataFrame:
    rows = [strategy.evaluate(c.context) for c in cases]
    return pd.DataFrame({f"{tag}_decision": [o.decision for o in rows],
                         f"{tag}_grade": [o.grade for o in rows],
                         f"{tag}_limit": [o.suggested_limit for o in rows]})


@pytest.fixture(scope="module")
def setting() -> tuple[list[Case], CompiledStrategy, CompiledStrategy]:
    doc = json.loads(DEFAULT_STRATEGY.read_text())
    champion = CompiledStrategy("preloan", 1, doc)
    loose = copy.deepcopy(doc)
    grade = next(n for n in loose["nodes"] if n["name"] == "grade")
    grade["content"]["rules"][2]["score"] = ">= 585"  # more C, fewer D: swap-ins
    grade["content"]["rules"][0]["score"] = ">= 700"
    policy = next(n for n in loose["nodes"] if n["name"] == "policy")
    policy["content"]["rules"][2]["cover"] = "< 0.3"  # refer more thin-deposit C: swap-outs
    return history(), champion, CompiledStrategy("preloan", 2, loose)


def test_backtest_equals_pandas(setting: tuple[list[Case], CompiledStrategy,
                                               CompiledStrategy]) -> None:
    cases, champion, candidate = setting
    report = backtest(candidate, cases, champion, LGD)
    df = pd.concat([frame(cases, candidate, "new"), frame(cases, champion, "old")], axis=1)
    df["score"] = [c.context["score"] for c in cases]
    df["bad"] = pd.array([c.bad for c in cases], dtype="Int64")
    df["band"] = (np.floor(df["score"] / BAND_POINTS) * BAND_POINTS).astype(int)
    known = df[df["bad"].notna()]
    band_rate = known.groupby("band")["bad"].mean().astype(float)
    df["pd"] = df["bad"].astype(float).fillna(df["band"].map(band_rate)) \
        .fillna(float(known["bad"].mean()))
    figures = report["figures"]
    approved = df[df["new_decision"] == "approve"]
    assert figures["approval_rate"] == pytest.approx((df["new_decision"] == "approve").mean())
    assert figures["expected_loss"] == pytest.approx(LGD * (approved["new_limit"]
                                                            * approved["pd"]).sum())
    by_grade = known.groupby("new_grade")["bad"].agg(["count", "sum"])
    for grade, row in by_grade.iterrows():
        got = figures["bad_rate_by_grade"][grade]
        assert (got["known"], got["bad"]) == (row["count"], row["sum"])
        assert got["bad_rate"] == pytest.approx(row["sum"] / row["count"])
    matrix = pd.crosstab(df["old_decision"], df["new_decision"])
    for old in matrix.index:
        for new in matrix.columns:
            assert report["swap_matrix"][old][new] == matrix.loc[old, new]
    swap_in = df[(df["old_decision"] != "approve") & (df["new_decision"] == "approve")]
    assert len(swap_in) > 0 and report["swap_in"]["count"] == len(swap_in)
    assert report["swap_in"]["estimated_bad_rate"] == pytest.approx(swap_in["pd"].mean())
    swap_out = df[(df["old_decision"] == "approve") & (df["new_decision"] != "approve")]
    assert len(swap_out) > 0 and report["swap_out"]["count"] == len(swap_out)
    assert report["swap_out"]["bad_rate"] == pytest.approx(
        swap_out["bad"].astype(float).mean())
    assert report["change"]["approval_rate"] == pytest.approx(
        (df["new_decision"] == "approve").mean() - (df["old_decision"] == "approve").mean())


def test_backtest_against_itself_has_no_swaps(setting: tuple[list[Case], CompiledStrategy,
                                                             CompiledStrategy]) -> None:
    cases, champion, _ = setting
    report = backtest(champion, cases, champion, LGD)
    assert report["swap_in"]["count"] == report["swap_out"]["count"] == 0
    assert report["change"] == {"approval_rate": 0.0, "expected_loss": 0.0}
