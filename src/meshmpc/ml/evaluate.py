"""Model evaluation at the bank: the figures of ``report.json`` and the HTML report.

Input: the bank's labels, the model's default probabilities (or scorecard
scores) of the aligned rows, each row's role (train / validation / test) and,
when declared, its observation date. Everything here is plaintext at the bank:
the bank learnt the scores from the scoring step; nothing is sent anywhere.

``report.json`` fields (stable): ``auc``, ``ks``, ``gini`` (held-out test
rows; all rows when there is no test split), ``train`` (the same on training
rows), ``rows`` per role, ``gains`` (deciles, riskiest first: rows, bads,
bad_rate, cum_bad_share, lift, cum_lift, ks), ``confusion`` (at probability
cut-offs), ``psi`` (scores of test vs train rows), ``oot`` (per application
month ``YYYY-MM``: rows, bad_rate, auc, ks when both classes occur).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.ml import metrics
from meshmpc.ml.logistic import ROLE_TEST, ROLE_TRAIN

CUTOFFS = (0.05, 0.1, 0.2, 0.3, 0.5)


def evaluate(labels: np.ndarray, probability: np.ndarray, roles: np.ndarray | None = None,
             months: Sequence[str | None] | None = None,
             cutoffs: Sequence[float] = CUTOFFS) -> dict[str, Any]:
    """The evaluation report (see the module docstring for the fields)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    roles = np.zeros(y.size, dtype=np.int8) if roles is None else np.asarray(roles)
    test = roles == ROLE_TEST
    held = test if test.any() and np.unique(y[test]).size == 2 else np.ones(y.size, bool)
    train = roles == ROLE_TRAIN
    out: dict[str, Any] = metrics.summary(y[held], p[held])
    out["evaluated_on"] = "test" if held is test else "all"
    out["rows"] = {"train": int(train.sum()), "validation": int((roles == 1).sum()),
                   "test": int(test.sum())}
    if train.any() and np.unique(y[train]).size == 2:
        out["train"] = metrics.summary(y[train], p[train])
    out["gains"] = metrics.gains_table(y[held], p[held])
    out["confusion"] = metrics.confusion_at(y[held], p[held], cutoffs)
    if train.any() and test.any():
        out["psi"] = metrics.psi(p[train], p[test])
    if months is not None:
        out["oot"] = by_month(y, p, months)
    return out


def by_month(y: np.ndarray, p: np.ndarray, months: Sequence[str | None]) -> list[dict]:
    """Performance per application month (out-of-time view)."""
    labels = np.asarray([m or "unknown" for m in months])
    out = []
    for month in sorted(set(labels.tolist())):
        rows = labels == month
        entry: dict[str, Any] = {"month": month, "rows": int(rows.sum()),
                                 "bad_rate": float(y[rows].mean())}
        if np.unique(y[rows]).size == 2:
            entry.update({"auc": metrics.auc(y[rows], p[rows]), "ks": metrics.ks(y[rows], p[rows])})
        out.append(entry)
    return out


def months_of(values: Sequence[Any]) -> list[str | None]:
    """``YYYY-MM`` of dates, datetimes or ISO strings (None stays None)."""
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif hasattr(v, "strftime"):
            out.append(v.strftime("%Y-%m"))
        else:
            out.append(str(v)[:7])
    return out
