"""The step rule of ml.logistic: scikit-learn's objective exactly, and the cosine schedule."""

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from meshmpc.ml.logistic import (
    LogisticConfig,
    VerticalError,
    penalty_weights,
    plaintext_reference,
    split_roles,
    step_rate,
)


def _data(n=400, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * np.array([0.05, 0.3, 1.0, 4.0])  # very unequal scales
    z = x @ np.array([8.0, 2.0, 0.5, 0.1]) - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    return x, y


@pytest.mark.parametrize("exact", [True, False])
def test_exact_l2_converges_to_scikit_learns_optimum(exact):
    """Full batch, many epochs, a strong penalty: with exact_l2 the weights are
    scikit-learn's LogisticRegression(C = 1 / l2); penalising the standardised
    weights instead lands elsewhere (so the test can tell them apart)."""
    x, y = _data()
    roles = split_roles(y.size, 0.0, 0.0)
    l2 = 2.0
    config = LogisticConfig(epochs=400, batch_size=0, l2=l2, decay=0.0, schedule="inverse",
                            exact_l2=exact, average=False)
    w, b, _, _ = plaintext_reference(x, y, roles, config, [2, 2])
    ref = LogisticRegression(C=1.0 / l2, tol=1e-10, max_iter=10_000).fit(x, y)
    close = np.allclose(w, ref.coef_[0], atol=1e-3) and abs(b - ref.intercept_[0]) < 1e-3
    assert close == exact, (w, ref.coef_[0])


def test_penalty_weights_are_inverse_variances_capped():
    scale = np.array([0.5, 1.0, 2.0, 1e-6])
    got = penalty_weights(scale, LogisticConfig(), n_train=10**6)
    assert np.allclose(got[:3], [4.0, 1.0, 0.25]) and got[3] == 2.0 ** 16
    # the penalty's own curvature stays within the step's stable range: rate l2 c / n <= 1
    config = LogisticConfig(l2=40.0, learning_rate=0.5)
    small = penalty_weights(scale, config, n_train=400, factor=0.5)
    assert np.allclose(small[:3], [4.0, 1.0, 0.25]) and small[3] == pytest.approx(40.0)
    assert np.array_equal(penalty_weights(scale, LogisticConfig(exact_l2=False)), np.ones(4))


def test_cosine_schedule_runs_from_the_rate_to_zero_over_all_steps():
    config = LogisticConfig(epochs=4, learning_rate=0.5)
    rates = [step_rate(config, 0.2, e, s, 10) for e in range(4) for s in range(10)]
    assert rates[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert rates[20] == pytest.approx(0.05)  # half-way: half the rate
    assert 0 < rates[-1] < 0.1 * (1 - math.cos(math.pi / 40))
    inverse = LogisticConfig(schedule="inverse", decay=2.0, learning_rate=0.5)
    assert step_rate(inverse, 1.0, 3, 7, 10) == pytest.approx(0.5 / 7)


def test_the_reference_needs_the_owners_widths_with_curvature():
    x, y = _data(100)
    roles = split_roles(100, 0.3, 0.0)
    with pytest.raises(VerticalError, match="widths"):
        plaintext_reference(x, y, roles, LogisticConfig(epochs=1))
    with pytest.raises(VerticalError, match="schedule"):
        LogisticConfig(schedule="linear")
