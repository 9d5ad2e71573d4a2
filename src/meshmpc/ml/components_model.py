"""Job components ``ml.logistic``, ``ml.scorecard``, ``ml.evaluate`` and ``ml.predict``.

Each is ``async def run(step, inputs, params) -> StepOutput`` (meshmpc.jobs.api)
and reads the nearest ``features`` table (or ``aligned`` with ``features:
raw``). Artefacts and report fields:

``ml.logistic``: table ``split`` (row, role: 0 train, 1 validation, 2 test) at
every party, table ``scores`` (row, role, z, probability) at the bank; model
``logistic`` (this party's feature names and weights; the bank's also the
intercept; in ``strict`` mode this party's shares instead); report: the
party's own weights, ``matrix`` ({coded: 1-byte WOE codes or not, bytes}), at the
bank also intercept, epochs_run, stopped_early and validation_brier (the one scalar
per epoch revealed to the bank). Parameters: LOGISTIC_KEYS of
:class:`~meshmpc.ml.logistic.LogisticConfig` (the step rule: ``curvature``,
``schedule``, ``decay``, ``exact_l2``), plus ``test``, ``validation``, ``security``.

``ml.scorecard``: model ``scorecard`` and files ``scorecard.json``,
``scorecard.csv``, ``scorecard.params.json`` (this party's points table); the
bank also gets table ``scores`` (row, role, score, probability) by the secure
sum of partial points. ``ml.predict``: table ``scores`` at the bank for the
rows of the current ``features`` table (scorecard points, logistic weights, or
jointly with the shares of a strict model or of an ``ml.mlp`` model, see
meshmpc.ml.components_mlp; ``use: mlp`` picks the MLP when a scorecard or a logistic
model is also upstream). ``ml.evaluate`` at the bank:
``report.json`` {"auc", "ks", "gini", "train", "gains", "confusion", "psi",
"oot"} and ``report.html``; other parties learn nothing in that step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.jobs.api import StepContext, StepOutput, find_model, find_table
from meshmpc.ml import evaluate as evaluation
from meshmpc.ml.coded import CodedMatrix
from meshmpc.ml.logistic import LogisticConfig, split_roles, train
from meshmpc.ml.model_io import logistic_model, read_logistic_model
from meshmpc.ml.predict import sum_to
from meshmpc.ml.report import write_report
from meshmpc.ml.scorecard import PartyScorecard, ScorecardParams, build_card
from meshmpc.ml.step_data import (
    StepDataError,
    bank_labels,
    feature_matrix,
    find_iv,
    step_roles,
)
from meshmpc.ml.vertical import VerticalSession

LOGISTIC_KEYS = ("epochs", "batch_size", "learning_rate", "momentum", "decay", "schedule",
                 "average", "l2", "exact_l2", "class_weight", "patience", "tol", "sigmoid",
                 "strict", "seed", "curvature")


def _security(step: StepContext, params: Mapping[str, Any]) -> str:
    return str(params.get("security") or step.options.get("security") or "dishonest-majority")


def _bank(step: StepContext) -> str:
    bank = step.label_holder
    if bank is None:
        raise StepDataError(f"step {step.step_id}: no party declares a label; "
                            f"add 'label:' to the bank's entry under 'parties'")
    return bank


async def _session(step: StepContext, params: Mapping[str, Any]) -> VerticalSession:
    return await VerticalSession.open(
        step.ctx.scope("session"), _bank(step), _security(step, params),
        triples=str(params.get("triples", "ot")), compute=params.get("compute_parties"),
        product=str(params.get("product", "auto")))


async def logistic(step: StepContext, inputs: Mapping[str, StepOutput],
                   params: Mapping[str, Any]) -> StepOutput:
    """``ml.logistic``: vertical logistic regression (see meshmpc.ml.logistic)."""
    config = LogisticConfig(**{k: params[k] for k in LOGISTIC_KEYS if k in params})
    bank = _bank(step)
    stats: dict[str, Any] = {}
    names, x = feature_matrix(step, inputs, params, stats_out=stats, coded=True)
    roles = split_roles(x.shape[0], float(params.get("test", 0.3)),
                        float(params.get("validation", 0.2)), int(params.get("seed", 0)))
    y = bank_labels(step, inputs) if step.party == bank else None
    session = await _session(step, params)
    result = await train(session, x, y, bank, roles, config)
    out = StepOutput()
    out.tables["split"] = pa.table({"row": np.arange(roles.size), "role": roles})
    out.models["logistic"] = logistic_model(step.party, names, result, config,
                                            _security(step, params),
                                            str(params.get("features", "woe")), stats)
    out.models["logistic"]["config"].update({
        "feature_scale": [] if result.feature_scale is None else result.feature_scale.tolist(),
        "compute_parties": session.compute,
                                             "triples": str(params.get("triples", "ot"))})
    out.report = {"weights": dict(zip(names, (result.weights.tolist()
                                             if result.weights is not None else []),
                                      strict=False)),
                  "features": len(names), "security": _security(step, params),
                  "compute_parties": session.compute,
                  "matrix": {"coded": isinstance(x, CodedMatrix), "bytes": int(x.nbytes)}}
    if step.party == bank:
        out.report.update({"intercept": result.intercept, "epochs_run": result.epochs_run,
                           "stopped_early": result.stopped_early,
                           "validation_brier": result.history,
                           "rows": {"train": int((roles == 0).sum()),
                                    "validation": int((roles == 1).sum()),
                                    "test": int((roles == 2).sum())}})
        if result.scores_z is not None:
            z = np.asarray(result.scores_z, dtype=np.float64)
            out.tables["scores"] = pa.table({"row": np.arange(z.size), "role": roles, "z": z,
                                             "probability": 1.0 / (1.0 + np.exp(-z))})
    return out


async def scorecard(step: StepContext, inputs: Mapping[str, StepOutput],
                    params: Mapping[str, Any]) -> StepOutput:
    """``ml.scorecard``: each owner's points table; the bank learns total scores."""
    model = find_model(inputs, "logistic")
    if model is None:
        raise StepDataError(f"party {step.party}, step {step.step_id}: ml.scorecard needs an "
                            f"ml.logistic step before it")
    lr = read_logistic_model(model, step.party)
    if lr.strict:
        raise StepDataError(f"step {step.step_id}: a strict logistic model keeps its weights "
                            f"secret-shared, so no owner can hold a points table; score it "
                            f"jointly with ml.predict")
    card_params = ScorecardParams(**{k: params[k] for k in
                                     ("pdo", "base_score", "base_odds", "rate", "decimals")
                                     if k in params})
    card = build_card(step.party, lr.features, lr.weights, card_params,
                      find_model(inputs, "binning"), lr.intercept)
    files = [p.name for p in card.save(step.workdir / "scorecard")]
    out = StepOutput(models={"scorecard": card.to_dict()}, files=files)
    names, x = feature_matrix(step, inputs, {"features": lr.source}, lr.stats)
    _check_columns(step, names, lr.features)
    total = await sum_to(step.ctx.scope("scores"), _bank(step), card.partial_from_woe(x))
    out.report = {"features": len(card.features), "params": card.to_dict()["params"]}
    if total is not None:
        out.report["base_points"] = card.base_points
        out.tables["scores"] = _scores_table(inputs, total, card_params)
    return out


def _check_columns(step: StepContext, have: list[str], want: list[str]) -> None:
    if have != want:
        raise StepDataError(f"party {step.party}, step {step.step_id}: the features table has "
                            f"columns {have[:8]} but the model was trained on {want[:8]}")


def _scores_table(inputs: Mapping[str, StepOutput], score: np.ndarray,
                  card: ScorecardParams) -> pa.Table:
    roles = step_roles(inputs, score.size)
    return pa.table({"row": np.arange(score.size), "role": roles, "score": score,
                     "probability": card.probability(score)})


async def predict(step: StepContext, inputs: Mapping[str, StepOutput],
                  params: Mapping[str, Any]) -> StepOutput:
    """``ml.predict``: batch scores of the current rows, the bank learning totals only."""
    card_model = find_model(inputs, "scorecard")
    lr_model = find_model(inputs, "logistic")
    bank = _bank(step)
    if step.party_params.get("ray") is not None:  # row partitions on this party's Ray
        from meshmpc.ml.predict_scaled import predict_on_ray, ray_setting

        options = ray_setting(step)
        assert options is not None
        return await predict_on_ray(step, inputs, params, options, bank)
    mlp_model = find_model(inputs, "mlp")
    if mlp_model is not None and (params.get("use") == "mlp"
                                  or (card_model is None and lr_model is None)):
        from meshmpc.ml.components_mlp import predict as predict_mlp

        return await predict_mlp(step, inputs, params, mlp_model)
    out = StepOutput()
    if card_model is not None and params.get("use", "scorecard") == "scorecard":
        card = PartyScorecard.from_dict(card_model)
        names, x = feature_matrix(step, inputs, params)
        _check_columns(step, names, [f.name for f in card.features])
        total = await sum_to(step.ctx.scope("scores"), bank, card.partial_from_woe(x))
        if total is not None:
            out.tables["scores"] = _scores_table(inputs, total, card.params)
        return out
    if lr_model is None:
        raise StepDataError(f"party {step.party}, step {step.step_id}: ml.predict needs an "
                            f"ml.logistic or ml.scorecard step before it")
    lr = read_logistic_model(lr_model, step.party)
    names, x = feature_matrix(step, inputs, {**params, "features": lr.source}, lr.stats)
    _check_columns(step, names, lr.features)
    if lr.strict:
        from meshmpc.ml.strict_scoring import score_strict

        z = await score_strict(step, lr, x, bank)
    else:
        partial = x @ lr.weights + (lr.intercept or 0.0)
        z = await sum_to(step.ctx.scope("scores"), bank, partial)
    if z is not None:
        roles = step_roles(inputs, z.size)
        out.tables["scores"] = pa.table({"row": np.arange(z.size), "role": roles, "z": z,
                                         "probability": 1.0 / (1.0 + np.exp(-z))})
    return out


async def evaluate(step: StepContext, inputs: Mapping[str, StepOutput],
                   params: Mapping[str, Any]) -> StepOutput:
    """``ml.evaluate`` at the bank (the others return at once: they learn nothing)."""
    if step.party != _bank(step):
        return StepOutput()
    scores = find_table(inputs, "scores")
    if scores is None:
        raise StepDataError(f"party {step.party}, step {step.step_id}: ml.evaluate needs a "
                            f"scoring step (ml.logistic, ml.scorecard or ml.predict) before it")
    y = bank_labels(step, inputs)
    p = scores.column("probability").to_numpy()
    if p.size != y.size:
        raise StepDataError(f"party {step.party}, step {step.step_id}: {p.size} scores for "
                            f"{y.size} labelled rows")
    roles = scores.column("role").to_numpy()
    months = _months(step, inputs)
    cutoffs = params.get("cutoffs", evaluation.CUTOFFS)
    report = evaluation.evaluate(y, p, roles, months, cutoffs)
    score = scores.column("score").to_numpy() if "score" in scores.column_names else None
    path = write_report(step.workdir / "report.html", report, y[roles == 2] if (roles == 2).any()
                        else y, p[roles == 2] if (roles == 2).any() else p,
                        None if score is None else
                        (score[roles == 2] if (roles == 2).any() else score),
                        find_iv(inputs), title=step.job_name)
    return StepOutput(report=report, files=[path.name])


def _months(step: StepContext, inputs: Mapping[str, StepOutput]) -> list[str | None] | None:
    column = step.me.obs_date or "obs_date"
    for name in ("features", "aligned"):
        table = find_table(inputs, name)
        if table is not None and column in table.column_names:
            return evaluation.months_of(table.column(column).to_pylist())
    return None
