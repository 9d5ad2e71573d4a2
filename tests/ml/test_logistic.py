"""ml.logistic equals its plaintext counterpart and scikit-learn on the same rows."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from meshmpc.jobs.api import StepOutput
from meshmpc.ml import metrics
from meshmpc.ml.components_model import logistic, predict
from meshmpc.ml.logistic import LogisticConfig, plaintext_reference, split_roles
from meshmpc.ml.step_data import StepDataError
from meshmpc.ml.synthetic import party_inputs, run_step, vertical_woe_data

WIDTHS4 = {"bank": 3, "gov": 5, "fin": 4, "telco": 2}


def _inputs(data, parties, label_override=None):
    out = {}
    for p in parties:
        table = data.features_table(p)
        if p == "bank" and label_override is not None:
            table = table.set_column(table.column_names.index("default_12m"), "default_12m",
                                     label_override)
        out[p] = {"bins": StepOutput(tables={"features": table},
                                     models={"binning": data.binning[p]})}
    return out


def _train(tmp_path, widths, n, params):
    data = vertical_woe_data(n, widths, seed=5)
    parties = list(widths)
    outs = run_step(logistic, party_inputs(parties), _inputs(data, parties),
                    params, tmp_path, "lr")
    return data, outs


def _sklearn_auc(data, parties, roles):
    x = np.hstack([data.woe[p] for p in parties])
    y = data.labels
    train, test = roles == 0, roles == 2
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x[train], y[train])
    return metrics.auc(y[test], model.decision_function(x[test]))


@pytest.mark.parametrize("widths,params", [
    pytest.param({"bank": 3, "gov": 4}, {"triples": "ot"}, marks=pytest.mark.slow),
    ({"bank": 2, "gov": 3, "fin": 3}, {"security": "honest-majority"}),
    (WIDTHS4, {"security": "honest-majority"}),
    pytest.param(WIDTHS4, {"triples": "ot", "compute_parties": ["bank", "gov"]},
                 marks=pytest.mark.slow),
    pytest.param({"bank": 2, "gov": 3, "fin": 3},
                 {"triples": "ot", "compute_parties": ["bank", "gov", "fin"]},
                 marks=pytest.mark.slow),
])
def test_secure_lr_matches_plaintext_and_sklearn(tmp_path, widths, params):
    n = 1200
    params = {"epochs": 6, "validation": 0.0, "test": 0.3, **params}
    data, outs = _train(tmp_path, widths, n, params)
    parties = list(widths)
    roles = split_roles(n, 0.3, 0.0)
    # each owner learns exactly its own weights; they equal the plaintext algorithm's
    config = LogisticConfig(epochs=6)
    x = np.hstack([data.woe[p] for p in parties])
    ref_w, ref_b, ref_epochs, _ = plaintext_reference(x, data.labels, roles, config,
                                                      list(widths.values()))
    got = np.concatenate([outs[p].models["logistic"]["weights"] for p in parties])
    assert np.allclose(x @ got, x @ ref_w, atol=2e-2)
    bank = outs["bank"]
    assert bank.report["epochs_run"] == ref_epochs
    assert abs(bank.models["logistic"]["intercept"] - ref_b) < 5e-3
    for p in parties:
        assert len(outs[p].models["logistic"]["weights"]) == widths[p]
        if p != "bank":
            assert "scores" not in outs[p].tables
            assert outs[p].models["logistic"]["intercept"] is None
    # the bank's held-out AUC is within 0.005 of scikit-learn's on the same rows
    scores = bank.tables["scores"]
    test = roles == 2
    auc = metrics.auc(data.labels[test], scores.column("z").to_numpy()[test])
    assert abs(auc - _sklearn_auc(data, parties, roles)) < 0.005
    z = x @ got + bank.models["logistic"]["intercept"]
    assert np.allclose(scores.column("z").to_numpy(), z, atol=1e-3)


def test_strict_mode_keeps_weights_shared(tmp_path):
    widths = {"bank": 2, "gov": 3, "fin": 2}
    data, outs = _train(tmp_path, widths, 1500, {"security": "honest-majority", "strict": True,
                                                 "epochs": 4, "batch_size": 500,
                                                 "validation": 0.0})
    for p in widths:
        model = outs[p].models["logistic"]
        assert model["weights"] == [] and model["intercept"] is None and model["strict"]
        assert model["shares"] is not None
        json.dumps(model), json.dumps(outs[p].report)  # the runner writes them as JSON
    roles = split_roles(1500, 0.3, 0.0)
    x = np.hstack([data.woe[p] for p in widths])
    ref_w, ref_b, _, _ = plaintext_reference(x, data.labels, roles,
                                             LogisticConfig(epochs=4, batch_size=500),
                                             list(widths.values()))
    z = outs["bank"].tables["scores"].column("z").to_numpy()
    assert np.allclose(z, x @ ref_w + ref_b, atol=1e-2)
    # ml.predict scores jointly from the shares; the bank learns z only
    inputs = _inputs(data, list(widths))
    for p in widths:
        inputs[p]["lr"] = outs[p]
    again = run_step(predict, party_inputs(list(widths)), inputs,
                     {"security": "honest-majority"}, tmp_path, "predict")
    assert np.allclose(again["bank"].tables["scores"].column("z").to_numpy(), z, atol=1e-3)
    assert "scores" not in again["gov"].tables


def test_class_weights_follow_plaintext(tmp_path):
    widths = {"bank": 2, "gov": 3, "fin": 2}
    params = {"security": "honest-majority", "class_weight": "balanced", "epochs": 3,
              "batch_size": 500, "validation": 0.0}
    data, outs = _train(tmp_path, widths, 1500, params)
    roles = split_roles(1500, 0.3, 0.0)
    x = np.hstack([data.woe[p] for p in widths])
    ref_w, _, _, _ = plaintext_reference(x, data.labels, roles, LogisticConfig(
        epochs=3, batch_size=500, class_weight="balanced"), list(widths.values()))
    got = np.concatenate([outs[p].models["logistic"]["weights"] for p in widths])
    assert np.allclose(x @ got, x @ ref_w, atol=2e-2)


def test_label_not_binary_names_party_step_column(tmp_path):
    import pyarrow as pa
    widths = {"bank": 2, "gov": 2, "fin": 2}
    data = vertical_woe_data(300, widths, seed=1)
    labels = data.labels.astype(np.int64)
    labels[7] = 2
    inputs = _inputs(data, list(widths), pa.array(labels))
    with pytest.raises(StepDataError, match=r"party bank, step lr, column 'default_12m'.*row 7"):
        run_step(logistic, party_inputs(list(widths)), inputs,
                 {"security": "honest-majority"}, tmp_path, "lr")


def test_early_stopping_reveals_only_validation_scores(tmp_path):
    widths = {"bank": 2, "gov": 3, "fin": 2}
    params = {"security": "honest-majority", "epochs": 12, "batch_size": 200,
              "learning_rate": 1.0, "validation": 0.3, "patience": 1}
    data, outs = _train(tmp_path, widths, 1500, params)
    roles = split_roles(1500, 0.3, 0.3)
    x = np.hstack([data.woe[p] for p in widths])
    _, _, epochs, history = plaintext_reference(x, data.labels, roles, LogisticConfig(
        epochs=12, batch_size=200, learning_rate=1.0, patience=1), list(widths.values()))
    bank = outs["bank"].report
    assert bank["epochs_run"] == epochs < 12 and bank["stopped_early"]
    assert np.allclose(bank["validation_brier"], history, atol=1e-3)
    for p in ("gov", "fin"):  # partners learn their weights and nothing of the validation
        assert "validation_brier" not in outs[p].report and "scores" not in outs[p].tables


def test_dishonest_majority_with_ot_triples_four_parties(tmp_path, monkeypatch):
    """semi2k with OT-made triples (no dealer): two compute parties, two input providers
    whose matrices are never shared: they serve HE products (product_he_provider)."""
    from meshmpc.ml.product_he_provider import ProvidedMatrix
    from meshmpc.ml.vertical import VerticalSession

    served: dict[str, int] = {}
    serve = ProvidedMatrix.serve

    async def counting_serve(self, x):
        served[self.provider] = await serve(self, x)
        return served[self.provider]

    shared_vectors: list[tuple[int, int]] = []
    provide = VerticalSession._input_from_provider

    async def no_sharing(self, owner, x, shape):
        if shape[0] != 1:  # one row: the exact-L2 weights vector (ml.logistic exact_l2)
            raise AssertionError("a provider's matrix was secret-shared")
        shared_vectors.append(tuple(shape))
        return await provide(self, owner, x, shape)

    monkeypatch.setattr(ProvidedMatrix, "serve", counting_serve)
    monkeypatch.setattr(VerticalSession, "_input_from_provider", no_sharing)
    widths = {"bank": 2, "gov": 2, "fin": 2, "telco": 1}
    params = {"epochs": 2, "batch_size": 200, "validation": 0.0}
    data, outs = _train(tmp_path, widths, 500, params)
    # 2 epochs x 2 mini-batches (350 training rows) x (forward + backward) per provider
    assert served == {"fin": 8, "telco": 8}
    assert shared_vectors  # the providers still input their exact-L2 vectors (one row)
    roles = split_roles(500, 0.3, 0.0)
    x = np.hstack([data.woe[p] for p in widths])
    ref_w, ref_b, _, _ = plaintext_reference(x, data.labels, roles,
                                             LogisticConfig(epochs=2, batch_size=200),
                                             list(widths.values()))
    got = np.concatenate([outs[p].models["logistic"]["weights"] for p in widths])
    assert np.allclose(x @ got, x @ ref_w, atol=2e-2)
    assert outs["telco"].report["compute_parties"] == ["bank", "gov"]


def test_raw_features_standardised(tmp_path):
    """features: raw reads the aligned columns (numbers standardised, strings one-hot)."""
    import pyarrow as pa

    widths = {"bank": 2, "gov": 2, "fin": 1}
    data = vertical_woe_data(900, widths, seed=4)
    inputs = {}
    for p in widths:
        table = data.raw_table(p)
        if p == "bank":
            table = table.append_column("default_12m", pa.array(data.labels.astype(np.int64)))
            table = table.append_column("region", pa.array(["n", "s", "e"] * 300))
        inputs[p] = {"align": StepOutput(tables={"aligned": table})}
    outs = run_step(logistic, party_inputs(list(widths)), inputs,
                    {"security": "honest-majority", "features": "raw", "epochs": 3,
                     "validation": 0.0}, tmp_path, "lr")
    model = outs["bank"].models["logistic"]
    assert model["features"] == ["bank_f0", "bank_f1", "region=e", "region=n", "region=s"]
    assert set(model["stats"]["bank_f0"]) == {"mean", "std"}
    assert outs["bank"].tables["scores"].num_rows == 900
