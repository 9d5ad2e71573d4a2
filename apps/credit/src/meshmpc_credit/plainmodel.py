"""Plaintext reference model: logistic regression and AUC on pooled data.

This is *not* a privacy-preserving component: it pools the parties' columns
in the clear to measure what a joint model can gain over a bank-only model
on the reference data (the yardstick the vertical-learning protocols must
reproduce), and to check the data generator spreads the default signal.

Preprocessing (fitted on the training rows only): categories one-hot;
numbers median-imputed with a missing indicator, ``log1p`` for non-negative
columns with a long right tail, standardised. The model is L2-regularised
logistic regression fitted by Newton's method (IRLS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass
class Preprocessor:
    """Column transforms learnt from training rows and applied to any rows."""

    numeric: dict[str, tuple[float, bool, float, float, bool]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, table: pa.Table, columns: Sequence[str]) -> Preprocessor:
        for name in columns:
            column = table.column(name)
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                values = sorted({v for v in column.unique().to_pylist() if v is not None})
                self.categories[name] = values[1:]
                continue
            raw = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            present = raw[~np.isnan(raw)]
            median = float(np.median(present)) if present.size else 0.0
            skewed = bool(present.size and present.min() >= 0
                          and np.percentile(present, 99) > 20 * max(median, 1.0))
            filled = _transform(np.where(np.isnan(raw), median, raw), skewed)
            self.numeric[name] = (median, skewed, float(filled.mean()),
                                  float(filled.std()) or 1.0, bool(np.isnan(raw).any()))
        return self

    def transform(self, table: pa.Table) -> np.ndarray:
        """The design matrix (rows x features) for ``table``."""
        parts: list[np.ndarray] = []
        for name, (median, skewed, mean, std, flag) in self.numeric.items():
            raw = table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
            missing = np.isnan(raw)
            parts.append((_transform(np.where(missing, median, raw), skewed) - mean) / std)
            if flag:
                parts.append(missing.astype(float))
        for name, values in self.categories.items():
            column = np.asarray(table.column(name).to_pylist(), dtype=object)
            parts.extend((column == v).astype(float) for v in values)
        return np.clip(np.column_stack(parts), -8, 8) if parts else np.zeros((table.num_rows, 0))


def _transform(values: np.ndarray, skewed: bool) -> np.ndarray:
    return np.log1p(values) if skewed else values


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 30) -> np.ndarray:
    """Weights (intercept first) of an L2-regularised logistic regression (Newton / IRLS)."""
    design = np.column_stack([np.ones(len(x)), x])
    weights = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ weights)))
        gradient = design.T @ (p - y) + penalty * weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    return weights


def predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Default probabilities for rows ``x``."""
    return 1.0 / (1.0 + np.exp(-(weights[0] + x @ weights[1:])))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = np.asarray(scores)[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes among the labels")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def joined_table(data_dir: Path, partners: Sequence[str] = ("gov", "fin", "telco")) -> pa.Table:
    """Bank rows joined (inner, on ``credit_code``) with every partner's Parquet table."""
    table = pq.read_table(Path(data_dir) / "bank.parquet")
    for party in partners:
        other = pq.read_table(Path(data_dir) / f"{party}.parquet")
        renamed = other.rename_columns(
            [c if c == "credit_code" else f"{party}__{c}" for c in other.column_names])
        table = table.join(renamed, "credit_code", join_type="inner")
    return table.sort_by("credit_code")


def auc_margin(data_dir: Path, test_share: float = 0.3, seed: int = 0) -> dict[str, float]:
    """Held-out AUC of a bank-only and a joint logistic regression on the joined rows."""
    table = joined_table(data_dir)
    labels = table.column("default_12m").to_numpy().astype(float)
    bank = [c for c in pq.read_schema(Path(data_dir) / "bank.parquet").names
            if c not in ("credit_code", "default_12m", "days_overdue")]
    joint = [c for c in table.column_names if c not in ("credit_code", "default_12m",
                                                         "days_overdue")]
    test = np.random.default_rng(seed).random(table.num_rows) < test_share
    train_rows, test_rows = pa.array(np.flatnonzero(~test)), pa.array(np.flatnonzero(test))
    result = {"rows": float(table.num_rows), "default_rate": float(labels.mean())}
    for name, columns in (("bank", bank), ("joint", joint)):
        prep = Preprocessor().fit(table.take(train_rows), columns)
        weights = fit_logistic(prep.transform(table.take(train_rows)), labels[~test])
        scores = predict(weights, prep.transform(table.take(test_rows)))
        result[f"{name}_auc"] = auc(labels[test], scores)
    result["margin"] = result["joint_auc"] - result["bank_auc"]
    return result
