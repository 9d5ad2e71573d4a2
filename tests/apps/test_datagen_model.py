"""The joint plaintext model beats the bank-only model by at least 0.08 AUC."""

import numpy as np
import pytest
from meshmpc_credit import datagen
from meshmpc_credit.plainmodel import auc, auc_margin, fit_logistic, predict


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.normal(size=300) + labels, 1)  # ties included
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auc(labels, scores) == pytest.approx(pairs)


def test_logistic_regression_recovers_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 3))
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(0.5 + x @ [1.0, -2.0, 0.0])))).astype(float)
    weights = fit_logistic(x, y, l2=1e-6)
    assert np.allclose(weights, [0.5, 1.0, -2.0, 0.0], atol=0.08)
    assert predict(weights, x).mean() == pytest.approx(y.mean(), abs=0.01)


def test_joint_model_beats_bank_only_by_008_auc(tmp_path):
    datagen.generate(tmp_path, 20_000, seed=7, months=0)
    result = auc_margin(tmp_path)
    assert result["rows"] > 8_000
    assert result["bank_auc"] > 0.6
    assert result["margin"] >= 0.08, result
