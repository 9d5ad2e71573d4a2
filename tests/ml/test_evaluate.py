"""ml.logistic -> ml.scorecard -> ml.predict -> ml.evaluate over four parties."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.jobs.api import StepOutput
from meshmpc.ml import metrics
from meshmpc.ml.components_model import evaluate, logistic, predict, scorecard
from meshmpc.ml.scorecard import ScorecardParams
from meshmpc.ml.synthetic import party_inputs, run_step, vertical_woe_data

WIDTHS = {"bank": 2, "gov": 3, "fin": 2, "telco": 2}
N = 1000


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipe")
    data = vertical_woe_data(N, WIDTHS, seed=11)
    parties = party_inputs(list(WIDTHS))
    months = [dt.date(2025, 1 + i % 3, 1) for i in range(N)]
    inputs = {}
    for p in WIDTHS:
        table = data.features_table(p)
        if p == "bank":
            table = table.append_column("obs_date", pa.array(months))
        inputs[p] = {"bins": StepOutput(tables={"features": table},
                                        models={"binning": data.binning[p]},
                                        report={"iv": {n: 0.1 for n in data.names[p]}})}
    common = {"security": "honest-majority"}
    for step_id, component, params in (
            ("lr", logistic, {**common, "epochs": 3, "batch_size": 200}),
            ("card", scorecard, {"pdo": 20, "base_score": 600, "base_odds": 50}),
            ("eval", evaluate, {}),
            ("predict", predict, common)):
        outs = run_step(component, parties, inputs, params, tmp, step_id)
        for p in WIDTHS:
            inputs[p] = {**inputs[p], step_id: outs[p]}
    return data, inputs, tmp


def test_scorecard_scores_equal_the_model(pipeline):
    data, inputs, _ = pipeline
    lr = {p: inputs[p]["lr"].models["logistic"] for p in WIDTHS}
    z = lr["bank"]["intercept"] + sum(data.woe[p] @ np.array(lr[p]["weights"]) for p in WIDTHS)
    card = ScorecardParams(pdo=20, base_score=600, base_odds=50)
    score = inputs["bank"]["card"].tables["scores"].column("score").to_numpy()
    assert np.allclose(score, card.offset - card.factor * z, atol=1e-2)
    for p in ("gov", "fin", "telco"):
        assert "scores" not in inputs[p]["card"].tables
        table = inputs[p]["card"].models["scorecard"]
        assert [f["name"] for f in table["features"]] == data.names[p]
        assert table["base_points"] is None


def test_evaluate_report_matches_metrics(pipeline):
    data, inputs, tmp = pipeline
    report = inputs["bank"]["eval"].report
    scores = inputs["bank"]["card"].tables["scores"]
    roles = scores.column("role").to_numpy()
    p = scores.column("probability").to_numpy()
    test = roles == 2
    assert report["auc"] == pytest.approx(metrics.auc(data.labels[test], p[test]))
    assert report["ks"] == pytest.approx(metrics.ks(data.labels[test], p[test]))
    assert report["gini"] == pytest.approx(2 * report["auc"] - 1)
    assert report["psi"] == pytest.approx(metrics.psi(p[roles == 0], p[test]))
    assert [m["month"] for m in report["oot"]] == ["2025-01", "2025-02", "2025-03"]
    assert len(report["gains"]) == 10
    page = (tmp / "bank" / "eval" / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 4 and "ROC 曲线" in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    for party in ("gov", "fin", "telco"):
        assert inputs[party]["eval"].report == {}


def test_predict_batch_equals_scorecard(pipeline):
    _, inputs, _ = pipeline
    card = inputs["bank"]["card"].tables["scores"].column("score").to_numpy()
    again = inputs["bank"]["predict"].tables["scores"].column("score").to_numpy()
    assert np.allclose(card, again, atol=1e-3)
