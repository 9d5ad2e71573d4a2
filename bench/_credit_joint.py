"""Synthetic inputs of the joint online score for ``meshmpc bench credit`` (a helper).

A public universe of ``population`` credit codes ``K0 .. K<population-1>``;
partner p holds 90 % of them (a residue class left out) with three numeric
features, scored by a five-bin points table of the joint job's format; the
bank's card (base points included) scores four of its application fields.
:func:`expected_scores` recomputes the joint score of stored decisions in the
clear, so the benchmark checks every answer's score.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EDGES = [None, 20.0, 40.0, 60.0, 80.0, None]


def _bins(woe: Sequence[float]) -> list[dict[str, Any]]:
    return [{"edges": [EDGES[i], EDGES[i + 1]], "woe": float(w), **({"missing": True}
                                                                    if i == 0 else {})}
            for i, w in enumerate(woe)]


def partner_card(partner: str, index: int) -> Any:
    from meshmpc.ml.scorecard import FeatureCard, PartyScorecard, ScorecardParams

    woe = np.linspace(0.8, -0.8, 5) * (1 + 0.2 * index)
    return PartyScorecard(partner, ScorecardParams(), [
        FeatureCard(f"{partner}_f{j}", 0.3 + 0.1 * j, _bins(woe * (-1) ** j))
        for j in range(3)])


def bank_card() -> Any:
    from meshmpc.ml.scorecard import FeatureCard, PartyScorecard, ScorecardParams

    def numeric(edges: list[float | None], woe: list[float]) -> list[dict[str, Any]]:
        return [{"edges": [edges[i], edges[i + 1]], "woe": w} for i, w in enumerate(woe)]

    return PartyScorecard("bank", ScorecardParams(), [
        FeatureCard("loan_amount", 0.4, numeric([None, 5e5, 1.5e6, None], [-0.4, 0.0, 0.5])),
        FeatureCard("interest_rate", 0.6, numeric([None, 4.5, 6.5, None], [-0.6, 0.1, 0.7])),
        FeatureCard("relationship_years", 0.5, numeric([None, 3.0, 8.0, None],
                                                       [0.5, 0.0, -0.6])),
        FeatureCard("collateral_type", 0.7, [
            {"category": ["property"], "woe": -0.7}, {"category": ["equipment", "receivables"],
                                                      "woe": 0.0},
            {"category": ["none", None], "woe": 0.6}])], base_points=640.0)


def held(partner: str, index: int, population: int) -> np.ndarray:
    """The ids partner ``index`` holds: all but one residue class mod 10."""
    ids = np.arange(population)
    return ids[(ids * 3 + index) % 10 != 0]


def write_joint_inputs(directory: Path, partners: Sequence[str], lists: dict[str, Path],
                       population: int, seed: int) -> tuple[dict[str, dict[str, Any]], Path]:
    """Per partner the ``serve_joint`` arguments; and the bank's card file."""
    rng = np.random.default_rng(seed)
    universe = directory / "universe.parquet"
    pq.write_table(pa.table({"credit_code": [f"K{i}" for i in range(population)]}), universe)
    args = {}
    for index, partner in enumerate(partners):
        ids = held(partner, index, population)
        columns: dict[str, Any] = {"credit_code": [f"K{i}" for i in ids]}
        for j in range(3):
            columns[f"{partner}_f{j}"] = np.round(rng.uniform(0, 100, ids.size), 2)
        pq.write_table(pa.table(columns), directory / f"{partner}.features.parquet")
        partner_card(partner, index).save(directory / f"{partner}_card")
        args[partner] = {"risk_list": str(lists[partner]), "universe": str(universe),
                         "data": str(directory / f"{partner}.features.parquet"),
                         "card": str(directory / f"{partner}_card.json"),
                         "partners": ",".join(partners)}
    bank_card().save(directory / "bank_card")
    return args, directory / "bank_card.json"


def partner_points(directory: Path, partners: Sequence[str], population: int) -> np.ndarray:
    """(population,) sum of the partners' partial scores (defaults where not held)."""
    total = np.zeros(population)
    for index, partner in enumerate(partners):
        card = partner_card(partner, index)
        table = pq.read_table(directory / f"{partner}.features.parquet")
        points = np.full(population, card.score_fields({}))
        ids = np.array([int(k[1:]) for k in table.column("credit_code").to_pylist()])
        points[ids] = card.partial_from_table(table)
        total += points
    return total


def expected_scores(decisions: Sequence[dict[str, Any]], directory: Path,
                    partners: Sequence[str], population: int) -> tuple[int, int]:
    """(scored answers checked, those whose joint score is off by more than 1e-3)."""
    others = partner_points(directory, partners, population)
    card = bank_card()
    rows = [(d["applicant"], d["context"]) for d in decisions]
    checked = wrong = 0
    for applicant, context in rows:
        ctx = json.loads(context) if isinstance(context, str) else context
        if ctx["score"] is None:  # unscored answers are counted as errors by check()
            continue
        checked += 1
        want = others[int(str(applicant)[1:])] + card.score_fields(ctx["bank"])
        wrong += int(abs(float(ctx["score"]) - float(want)) > 1e-3)
    return checked, wrong
