"""Metrics equal scikit-learn's and the textbook definitions on the same rows."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from meshmpc.ml import metrics

RNG = np.random.default_rng(4)
Y = (RNG.random(3000) < 0.15).astype(float)
S = Y * 0.8 + RNG.normal(size=3000)
S[:200] = np.round(S[:200], 1)  # ties


def test_auc_gini_ks_match_sklearn():
    assert metrics.auc(Y, S) == pytest.approx(roc_auc_score(Y, S), abs=1e-12)
    assert metrics.gini(Y, S) == pytest.approx(2 * roc_auc_score(Y, S) - 1, abs=1e-12)
    fpr, tpr, _ = roc_curve(Y, S)
    assert metrics.ks(Y, S) == pytest.approx(np.max(tpr - fpr), abs=1e-12)


def test_gains_deciles_add_up():
    table = metrics.gains_table(Y, S)
    assert sum(r["rows"] for r in table) == Y.size
    assert sum(r["bads"] for r in table) == Y.sum()
    assert table[-1]["cum_bad_share"] == pytest.approx(1.0)
    assert table[0]["lift"] > 1.5 > table[-1]["lift"]
    assert max(r["ks"] for r in table) <= metrics.ks(Y, S) + 1e-12


def test_psi_zero_for_same_sample_and_positive_for_shift():
    assert metrics.psi(S, S) == pytest.approx(0.0, abs=1e-12)
    e, a = S[:1500], S[1500:] + 0.5
    cuts = np.quantile(e, np.linspace(0, 1, 11)[1:-1])
    ea = np.bincount(np.searchsorted(cuts, e, side="right"), minlength=10) / e.size
    aa = np.bincount(np.searchsorted(cuts, a, side="right"), minlength=10) / a.size
    assert metrics.psi(e, a) == pytest.approx(np.sum((aa - ea) * np.log(aa / ea)))
    assert metrics.psi(e, a) > 0.1


def test_confusion_counts():
    p = 1 / (1 + np.exp(-S))
    row = metrics.confusion_at(Y, p, [0.5])[0]
    flagged = p >= 0.5
    assert row["tp"] == int((flagged & (Y == 1)).sum())
    assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == Y.size


def test_bad_labels_and_single_class_rejected():
    with pytest.raises(metrics.MetricError, match="0 \\(good\\) or 1"):
        metrics.auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(metrics.MetricError, match="both classes"):
        metrics.auc([0, 0, 0], [0.1, 0.2, 0.3])
