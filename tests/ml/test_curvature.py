"""The curvature-scaled learning rate: a correct bound, and the secure run equals the
plaintext algorithm with it."""

import numpy as np
import pyarrow as pa

from meshmpc.jobs.api import StepOutput
from meshmpc.ml import curvature
from meshmpc.ml.components_model import logistic
from meshmpc.ml.logistic import LogisticConfig, plaintext_reference, split_roles
from meshmpc.ml.synthetic import party_inputs, run_step


def test_power_iteration_finds_the_top_eigenvalue_and_the_bound_holds():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 1)) + 0.4 * rng.normal(size=(3000, 12))
    expected = np.linalg.eigvalsh(x.T @ x / 3000).max()
    assert abs(curvature.top_eigenvalue(x) - expected) < 1e-6 * expected
    left, right = x[:, :5], x[:, 5:]
    pooled = curvature.top_eigenvalue(x)
    parts = curvature.block_eigenvalues(x, [5, 7], 3000)
    assert pooled <= sum(parts) + 1e-9  # ||X||^2 <= sum_p ||X_p||^2
    assert parts == [curvature.top_eigenvalue(left), curvature.top_eigenvalue(right)]
    assert curvature.rate_factor([0.5, 0.8]) == 1.0  # small problems keep their rate
    assert curvature.rate_factor([200.0]) < 0.06


def _correlated(n, widths, seed=3):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.2 * z - 1.5)))).astype(np.int64)
    blocks = {p: z[:, None] + 0.3 * rng.normal(size=(n, d)) for p, d in widths.items()}
    return blocks, y


def test_secure_lr_with_curvature_equals_plaintext_on_correlated_columns(tmp_path):
    widths = {"bank": 3, "gov": 12, "fin": 10}
    n = 900
    blocks, y = _correlated(n, widths)
    x = np.hstack(list(blocks.values()))
    roles = split_roles(n, 0.3, 0.0)
    config = LogisticConfig(epochs=4, curvature=True)
    order = np.flatnonzero(roles == 0)  # the eigenvalues use training rows only
    xs = x[order] / x[order].std(0)
    factor = curvature.rate_factor(sorted(curvature.block_eigenvalues(
        xs, list(widths.values()), order.size)))
    assert factor < 0.6  # the columns are correlated enough for the bound to act
    inputs = {}
    for p, b in blocks.items():
        columns = {f"{p}_{j}": b[:, j] for j in range(b.shape[1])}
        if p == "bank":
            columns["default_12m"] = y
        inputs[p] = {"bins": StepOutput(tables={"features": pa.table(columns)})}
    params = {"epochs": 4, "validation": 0.0, "security": "honest-majority", "curvature": True}
    outs = run_step(logistic, party_inputs(list(widths)), inputs, params, tmp_path, "lr")
    ref_w, ref_b, _, _ = plaintext_reference(x, y.astype(np.float64), roles, config,
                                             list(widths.values()))
    got = np.concatenate([outs[p].models["logistic"]["weights"] for p in widths])
    assert np.allclose(x @ got, x @ ref_w, atol=2e-2)
    assert abs(outs["bank"].models["logistic"]["intercept"] - ref_b) < 5e-3
    plain_w, _, _, _ = plaintext_reference(x, y.astype(np.float64), roles,
                                           LogisticConfig(epochs=4, curvature=False),
                                           list(widths.values()))
    assert not np.allclose(x @ ref_w, x @ plain_w, atol=2e-2)  # the factor changed the run
