"""The ``ml.boost`` job component: SecureBoost on the aligned rows (see meshmpc.ml.boost).

Input: the nearest ``features`` table, else the nearest ``aligned`` table; every
column except the entity key, the label and ``obs_date`` is a model feature
and must be numeric. The label holder (the job's party with ``label``) trains;
every other party of the step serves as a feature owner. Outputs: model
``boost`` (each party only its own part: the bank its trees and split table,
a partner its records), table ``scores`` at the bank (training scores), and a
report: at the bank ``{"trees", "history", "importance"}`` for its own features
plus ``"auc"`` (training rows, logistic); at a partner ``{"importance"}`` of its
own features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.jobs.api import StepContext, StepOutput, find_table
from meshmpc.ml.boost import train_bank, train_partner
from meshmpc.ml.boost_core import BoostParams

RESERVED = {"obs_date"}


def feature_matrix(table: pa.Table, skip: set[str], where: str) -> tuple[np.ndarray, list[str]]:
    """The numeric feature columns as a float matrix; a clear error for anything else."""
    names = [c for c in table.column_names if c not in skip]
    cols = []
    for name in names:
        col = table.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_boolean(col.type)):
            raise ValueError(f"{where}: column {name!r} is {col.type}, not numeric: encode it "
                             "(e.g. with ml.binning) or drop it")
        cols.append(col.to_numpy(zero_copy_only=False).astype(np.float64))
    x = np.stack(cols, axis=1) if cols else np.zeros((table.num_rows, 0))
    return x, names


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    pos = y > 0.5
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


async def run(step: StepContext, inputs: Mapping[str, StepOutput],
              params: Mapping[str, Any]) -> StepOutput:
    """Train SecureBoost among the step's parties (label holder: the bank)."""
    where = f"party {step.party}, step {step.step_id} (ml.boost)"
    table = find_table(inputs, "features") or find_table(inputs, "aligned")
    if table is None:
        raise ValueError(f"{where}: no 'features' or 'aligned' table: run psi.align first")
    bank = step.label_holder
    if bank is None or bank not in step.step_parties:
        raise ValueError(f"{where}: no party of the step declares a label")
    p = BoostParams.from_mapping(dict(params))
    ctx = step.ctx.subgroup(list(step.step_parties)) if hasattr(step.ctx, "subgroup") else step.ctx
    skip = {c for c in (step.me.key, step.me.label) if c} | RESERVED
    x, names = feature_matrix(table, skip, where)
    if step.party != bank:
        model = await train_partner(ctx, x, bank, names)
        return StepOutput(models={"boost": model}, report={"importance": model["importance"]})
    label = step.me.label
    assert label is not None
    if label not in table.column_names:
        raise ValueError(f"{where}: label column {label!r} is missing from the input table")
    y = table.column(label).to_numpy(zero_copy_only=False).astype(np.float64)
    if np.isnan(y).any():
        raise ValueError(f"{where}: label column {label!r} has missing values")
    if p.objective == "logistic" and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{where}: label column {label!r} must be 0/1 for the logistic objective")
    partners = [q for q in step.step_parties if q != bank]
    model = await train_bank(ctx, x, y, partners, p, names)
    margin = np.asarray(model.pop("margin"))
    from meshmpc.ml.boost_core import OBJECTIVES

    scores = OBJECTIVES[p.objective]().transform(margin)
    report: dict[str, Any] = {"trees": len(model["boosted"]["trees"]),
                              "history": model["boosted"]["history"],
                              "importance": model["importance"]}
    if p.objective == "logistic":
        report["auc"] = auc(scores, y)
    return StepOutput(models={"boost": model}, tables={"scores": pa.table({"score": scores})},
                      report=report)
