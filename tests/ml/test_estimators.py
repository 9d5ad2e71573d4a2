"""sklearn-style estimators per party; versioned model files."""

import json

import numpy as np
import pytest

from meshmpc.ml.estimators import Scorecard, VerticalLogisticRegression
from meshmpc.ml.logistic import LogisticConfig, plaintext_reference, split_roles
from meshmpc.ml.model_io import ModelFormatError, load_model
from meshmpc.ml.synthetic import vertical_woe_data
from meshmpc.net.memory import run_parties

WIDTHS = {"bank": 2, "gov": 2, "fin": 3}
DATA = vertical_woe_data(600, WIDTHS, seed=3)


def test_fit_predict_save_load(tmp_path):
    async def party(ctx):
        est = VerticalLogisticRegression(ctx, security="honest-majority", epochs=3,
                                         batch_size=150)
        table = DATA.features_table(ctx.party).drop_columns(
            ["default_12m"] if ctx.party == "bank" else [])
        await est.fit(table, DATA.labels if ctx.party == "bank" else None)
        proba = await est.predict_proba(table)
        path = est.save(tmp_path / f"{ctx.party}.json")
        again = VerticalLogisticRegression(ctx).load(path)
        card = Scorecard(pdo=40).fit(est, DATA.binning[ctx.party])
        return est.get_params(), proba, again.transform(table), est.transform(table), \
            card.predict(table)

    out = run_parties(list(WIDTHS), party)
    params, proba, reloaded, partial, _ = out["bank"]
    assert params["epochs"] == 3 and params["security"] == "honest-majority"
    x = np.hstack([DATA.woe[p] for p in WIDTHS])
    w, b, _, _ = plaintext_reference(x, DATA.labels, split_roles(600, 0.0, 0.0),
                                     LogisticConfig(epochs=3, batch_size=150),
                                     list(WIDTHS.values()))
    assert np.allclose(proba[:, 1], 1 / (1 + np.exp(-(x @ w + b))), atol=2e-3)
    assert out["gov"][1] is None and np.array_equal(reloaded, partial)


def test_set_params_and_unknown_param():
    est = VerticalLogisticRegression(epochs=2)
    assert est.set_params(epochs=5).get_params()["epochs"] == 5
    with pytest.raises(ValueError, match="no parameter 'epoch'"):
        est.set_params(epoch=5)


def test_model_version_checked(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"format": "meshmpc.logistic", "version": 99}))
    with pytest.raises(ModelFormatError, match="version 99 is not supported"):
        load_model(path, "meshmpc.logistic")
    path.write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ModelFormatError, match="expected a 'meshmpc.logistic'"):
        load_model(path, "meshmpc.logistic")
