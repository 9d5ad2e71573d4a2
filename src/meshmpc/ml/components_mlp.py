"""Job component ``ml.mlp`` and the MLP branch of ``ml.predict``.

``ml.mlp`` trains a vertical MLP (meshmpc.ml.mlp_secure) on the nearest
``features`` table (or ``aligned`` with ``features: raw``). Artefacts: table
``split`` (row, role) at every party; at the bank table ``scores`` (row, role,
z, probability), which ``ml.evaluate`` reads; model ``mlp`` (this party's part,
meshmpc.ml.mlp_model). Report: at every party ``features``, ``layers``,
``security``, ``compute_parties``, ``reveal``; at the bank also ``epochs_run``,
``stopped_early``, ``validation_brier`` (the one scalar per epoch revealed to
it) and ``rows``.

Params (public): ``layers`` (e.g. [64, 32]), ``epochs``, ``batch_size``,
``optimizer`` (sgd | adam), ``learning_rate``, ``momentum``, ``beta1``,
``beta2``, ``eps``, ``l2``, ``patience``, ``tol``, ``sigmoid``, ``reveal``
(none | first-layer), ``seed``, ``validation`` (default 0.2), ``test``
(default 0.3), ``security``, ``triples`` (semi2k: he, the default: matrix triples by
packed BFV products; ot; dealer for tests), ``compute_parties``, ``features``.
An unknown key is refused with its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.jobs.api import StepContext, StepOutput
from meshmpc.ml.logistic import split_roles
from meshmpc.ml.mlp import MLPConfig
from meshmpc.ml.mlp_model import MLPModel, score_rows
from meshmpc.ml.mlp_secure import train
from meshmpc.ml.step_data import StepDataError, bank_labels, feature_matrix, step_roles
from meshmpc.ml.vertical import VerticalSession

STEP_KEYS = {"validation", "test", "security", "triples", "compute_parties", "features",
             "product"}
CONFIG_KEYS = {f for f in MLPConfig.__dataclass_fields__
               if f not in ("init_seed", "output", "classes")}
"""The step trains binary models (its scores table and ml.evaluate are binary): a softmax
output is available through the Python API (meshmpc.ml.mlp_secure.train)."""


def _security(step: StepContext, params: Mapping[str, Any]) -> str:
    return str(params.get("security") or step.options.get("security") or "dishonest-majority")


def _bank(step: StepContext) -> str:
    if step.label_holder is None:
        raise StepDataError(f"step {step.step_id}: no party declares a label; "
                            f"add 'label:' to the bank's entry under 'parties'")
    return step.label_holder


def check_params(step: StepContext, params: Mapping[str, Any]) -> MLPConfig:
    """The config from the step's params; an unknown key or bad value names its field."""
    unknown = sorted(set(params) - STEP_KEYS - CONFIG_KEYS)
    if params.get("output", "sigmoid") != "sigmoid":
        raise StepDataError(f"party {step.party}, step {step.step_id}: ml.mlp output "
                            f"{params['output']!r} is not available in a job step (binary "
                            f"labels, sigmoid output); a softmax network trains through "
                            f"meshmpc.ml.mlp_secure.train")
    unknown = sorted(set(unknown) - {"output"})
    if unknown:
        raise StepDataError(f"party {step.party}, step {step.step_id}: ml.mlp has no "
                            f"parameter {unknown[0]!r}; valid: {sorted(STEP_KEYS | CONFIG_KEYS)}")
    try:
        return MLPConfig.from_params(params)
    except (TypeError, ValueError) as exc:
        raise StepDataError(f"party {step.party}, step {step.step_id}: {exc}") from exc


async def mlp(step: StepContext, inputs: Mapping[str, StepOutput],
              params: Mapping[str, Any]) -> StepOutput:
    """``ml.mlp``: vertical MLP training (see meshmpc.ml.mlp_secure)."""
    config = check_params(step, params)
    bank = _bank(step)
    stats: dict[str, Any] = {}
    names, x = feature_matrix(step, inputs, params, stats_out=stats)
    roles = split_roles(x.shape[0], float(params.get("test", 0.3)),
                        float(params.get("validation", 0.2)), config.seed)
    y = bank_labels(step, inputs) if step.party == bank else None
    security, triples = _security(step, params), str(params.get("triples", "he"))
    session = await VerticalSession.open(
        step.ctx.scope("session"), bank, security, triples=triples,
        compute=params.get("compute_parties"), product=str(params.get("product", "auto")))
    result = await train(session, x, y, bank, roles, config)
    model = MLPModel.from_result(step.party, names, result, config, security, session.compute,
                                 triples, str(params.get("features", "woe")), stats)
    out = StepOutput(models={"mlp": model.to_dict()})
    out.tables["split"] = pa.table({"row": np.arange(roles.size), "role": roles})
    out.report = {"features": len(names), "layers": list(config.layers), "security": security,
                  "compute_parties": session.compute, "reveal": config.reveal}
    if step.party == bank:
        out.report.update({"epochs_run": result.epochs_run,
                           "stopped_early": result.stopped_early,
                           "validation_brier": result.history,
                           "rows": {"train": int((roles == 0).sum()),
                                    "validation": int((roles == 1).sum()),
                                    "test": int((roles == 2).sum())}})
        if result.scores_z is not None:
            out.tables["scores"] = _scores(result.scores_z, roles)
    return out


def _scores(z: np.ndarray, roles: np.ndarray) -> pa.Table:
    z = np.asarray(z, dtype=np.float64)
    return pa.table({"row": np.arange(z.size), "role": roles, "z": z,
                     "probability": 1.0 / (1.0 + np.exp(-z))})


async def predict(step: StepContext, inputs: Mapping[str, StepOutput],
                  params: Mapping[str, Any], model_data: dict[str, Any]) -> StepOutput:
    """``ml.predict`` with an ``ml.mlp`` model: joint scores of the current rows, the
    bank learning the logits only (called by meshmpc.ml.components_model.predict)."""
    model = MLPModel.from_dict(model_data)
    names, x = feature_matrix(step, inputs, {**params, "features": model.source}, model.stats)
    if names != model.features:
        raise StepDataError(f"party {step.party}, step {step.step_id}: the features table has "
                            f"columns {names[:8]} but the MLP was trained on "
                            f"{model.features[:8]}")
    z = await score_rows(step.ctx, model, x, _bank(step))
    out = StepOutput()
    if z is not None:
        out.tables["scores"] = _scores(z, step_roles(inputs, z.size))
    return out
