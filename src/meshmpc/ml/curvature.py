"""A public step-size bound for vertical logistic regression from the owners' curvature.

Gradient descent with momentum diverges along the steepest direction when
``rate * L`` exceeds about ``2 (1 + momentum)``, with L the largest eigenvalue of the
loss's Hessian, at most ``0.25 * ||X||^2 / n`` for the logistic loss. Wide, correlated
features (10^5 rows x 1,000 WOE columns loading on a few factors) make ||X||^2 / n
reach the hundreds, where a rate that suits a few dozen columns diverges. No party
sees X, but ``X X^T = sum_p X_p X_p^T`` gives ``||X||^2 <= sum_p ||X_p||^2``: each owner
estimates its own block's top eigenvalue (power iteration on a public prefix of its
shuffled training rows) and announces that one scalar; every party then scales the
rate by the same ``min(1, TARGET / L)``. What it reveals: per owner the top eigenvalue
of its standardised features' covariance (how strongly its columns are correlated),
nothing about rows or labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SAMPLE_ROWS = 20_000
"""Training rows the estimate uses (a prefix of the public shuffled order)."""
ITERATIONS = 30
TARGET = 2.5
"""rate * L at the configured learning rate stays below this (heavy ball at momentum 0.9
is stable up to 3.8); small, weakly correlated problems keep their rate unchanged."""


def top_eigenvalue(x: Any, rows: int = SAMPLE_ROWS) -> float:
    """The largest eigenvalue of x^T x / m over the first ``rows`` rows of x (an array
    or a CodedMatrix), by power iteration from the all-ones vector (deterministic)."""
    sample = np.asarray(x[:rows], dtype=np.float64)
    m, d = sample.shape
    if m == 0 or d == 0:
        return 0.0
    v = np.full(d, 1.0 / math.sqrt(d))
    value = 0.0
    for _ in range(ITERATIONS):
        u = sample.T @ (sample @ v) / m
        value = float(np.linalg.norm(u))
        if value == 0.0:
            return 0.0
        v = u / value
    return value


def rate_factor(eigenvalues: Sequence[float]) -> float:
    """min(1, TARGET / L) with L = 0.25 (1 + sum of the owners' eigenvalues): the
    intercept's column of ones adds 1."""
    bound = 0.25 * (1.0 + float(sum(eigenvalues)))
    return min(1.0, TARGET / bound)


def block_eigenvalues(xs: Any, widths: Sequence[int], rows: int) -> list[float]:
    """Per-block top eigenvalues of pooled x, an array or a CodedMatrix (the plaintext
    reference's view of owners)."""
    bounds = np.cumsum([0, *widths])
    sample = np.asarray(xs[:rows], dtype=np.float64)  # xs may be a CodedMatrix
    return [top_eigenvalue(sample[:, bounds[i]:bounds[i + 1]]) for i in range(len(widths))
            if widths[i]]
