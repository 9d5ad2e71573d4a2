"""Scorecard points follow toad's convention; export and reload give identical scores."""

import math

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.ml.scorecard import PartyScorecard, ScorecardParams, bin_index, build_card
from meshmpc.ml.synthetic import vertical_woe_data

DATA = vertical_woe_data(400, {"bank": 2, "gov": 3}, seed=2)
PARAMS = ScorecardParams(pdo=20, base_score=600, base_odds=50)


def _cards(decimals=None):
    params = ScorecardParams(pdo=20, base_score=600, base_odds=50, decimals=decimals)
    w = {"bank": np.array([0.8, 1.1]), "gov": np.array([0.9, 0.5, 1.2])}
    return {p: build_card(p, DATA.names[p], w[p], params, DATA.binning[p],
                          -2.0 if p == "bank" else None) for p in w}, w


def test_points_sum_to_toad_score():
    cards, w = _cards()
    total = sum(cards[p].partial_from_woe(DATA.woe[p]) for p in cards)
    z = -2.0 + sum(DATA.woe[p] @ w[p] for p in w)
    prob = 1 / (1 + np.exp(-z))
    factor = 20 / math.log(2)
    offset = 600 - factor * math.log(50)
    assert np.allclose(total, offset + factor * np.log((1 - prob) / prob))
    assert np.allclose(PARAMS.probability(total), prob)
    assert cards["gov"].base_points is None
    assert cards["bank"].base_points == pytest.approx(offset + factor * 2.0)


def test_raw_lookup_equals_woe_scoring():
    cards, _ = _cards(decimals=0)
    for p, card in cards.items():
        raw = DATA.raw_table(p)
        assert np.array_equal(card.partial_from_table(raw), card.partial_from_woe(DATA.woe[p]))


def test_export_and_reload_give_identical_scores(tmp_path):
    cards, _ = _cards(decimals=1)
    card = cards["bank"]
    written = card.save(tmp_path / "bank-card")
    assert {p.name for p in written} == {"bank-card.json", "bank-card.csv",
                                         "bank-card.params.json"}
    again = PartyScorecard.load(tmp_path / "bank-card")
    assert again.params == card.params
    assert np.array_equal(again.partial_from_woe(DATA.woe["bank"]),
                          card.partial_from_woe(DATA.woe["bank"]))
    csv = pa.csv.read_csv(tmp_path / "bank-card.csv")
    assert csv.column("points").to_pylist()[-1] == pytest.approx(card.base_points)


def test_bin_lookup_missing_and_categories():
    bins = [{"edges": [None, 1.0], "woe": 0.1}, {"edges": [1.0, None], "woe": 0.2,
                                                 "missing": True}]
    assert bin_index(bins, [0.5, 1.0, None, float("nan"), 7]).tolist() == [0, 1, 1, 1, 1]
    cats = [{"category": ["A", "B"], "woe": 0.0}, {"category": [None], "woe": 1.0}]
    assert bin_index(cats, ["A", "B", None, "Z"]).tolist() == [0, 0, 1, -1]
