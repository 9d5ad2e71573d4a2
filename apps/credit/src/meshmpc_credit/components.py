"""Job components of the credit application (registered under ``meshmpc.components``).

``credit.screen``
    Fraud screening: the querier (default the label holder, the bank) asks
    the risk lists of the step's other parties about its first
    ``params.applicants`` applicants by keyword PIR. Each holder's list is
    ``parties.<holder>.risklist`` (relative to the job file) or, by default,
    ``<holder>.risklist.parquet`` beside its data. The holders learn nothing
    about whom was asked; the querier learns only which asked keys are listed.
    Querier's report: ``{"asked", "hits": {holder: n}, "flagged"}``; table
    ``screened`` (key, ``listed_<holder>``, ``flagged``).

``credit.secure_lr``
    The existing secure logistic regression on the aligned rows (table
    ``aligned`` of an ancestor, normally ``psi.align``): ``params.compute``
    (two parties, default bank and gov) hold semi2k shares; the others
    secret-share their columns to them. The label holder's report:
    ``{"features", "joint_features", "steps", "train_rows", "test_rows",
    "auc_joint", "auc_bank_only"}`` and table ``scores`` (key and revealed
    score of every held-out row); other parties report ``{"features"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.data.loaders import load_table
from meshmpc.jobs.api import StepContext, StepOutput, find_table
from meshmpc_credit.pipeline import COMPUTE_PARTIES, KEY, rate, screen_applicants, serve_risk_list


def _check_params(step: StepContext, params: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = [k for k in params if k not in known]
    if unknown:
        raise ValueError(f"step {step.step_id!r}: unknown param {unknown[0]!r}; "
                         f"known: {', '.join(known)}")


def _querier(step: StepContext, params: Mapping[str, Any]) -> str:
    querier = str(params.get("querier") or step.label_holder or step.step_parties[0])
    if querier not in step.step_parties:
        raise ValueError(f"step {step.step_id!r}: querier {querier!r} is not a party of the "
                         f"step ({', '.join(step.step_parties)})")
    return querier


def _risk_list(step: StepContext) -> Path:
    me = step.me
    declared = me.extra.get("risklist")
    if declared:
        path = Path(str(declared))
        return path if path.is_absolute() else Path(step.options.get("job_dir", ".")) / path
    if not me.data:
        raise ValueError(f"party {step.party}: credit.screen needs parties.{step.party}."
                         "risklist (or data, with <party>.risklist.parquet beside it)")
    return Path(me.data).with_name(f"{step.party}.risklist.parquet")


async def screen(step: StepContext, inputs: Mapping[str, StepOutput],
                 params: Mapping[str, Any]) -> StepOutput:
    """The ``credit.screen`` component (see the module docstring)."""
    _check_params(step, params, ("applicants", "querier"))
    querier = _querier(step, params)
    key = step.me.key or KEY
    if step.party != querier:
        path = _risk_list(step)
        if not path.is_file():
            raise FileNotFoundError(f"party {step.party}: risk list {path} does not exist")
        listed = await serve_risk_list(step.ctx, path, key, querier)
        return StepOutput(report={"risk_list_rows": listed, "querier": querier})
    if not step.me.data:
        raise ValueError(f"party {step.party}: credit.screen needs parties.{step.party}.data")
    applicants = int(params.get("applicants", 200))
    keys = load_table(step.me.data, [key]).column(key).slice(0, applicants).to_pylist()
    holders = [p for p in step.step_parties if p != querier]
    report, table = await screen_applicants(step.ctx, [str(k) for k in keys], holders)
    return StepOutput(tables={"screened": table}, report=report)


async def secure_lr(step: StepContext, inputs: Mapping[str, StepOutput],
                    params: Mapping[str, Any]) -> StepOutput:
    """The ``credit.secure_lr`` component (see the module docstring)."""
    _check_params(step, params, ("steps", "learning_rate", "compute"))
    aligned = find_table(inputs, "aligned")
    if aligned is None:
        raise ValueError(f"step {step.step_id!r}: credit.secure_lr needs an 'aligned' table "
                         "from an earlier step (run psi.align before it)")
    holder = step.label_holder
    label = step.parties[holder].label if holder else None
    if holder is None or label is None or holder not in step.step_parties:
        raise ValueError(f"step {step.step_id!r}: credit.secure_lr needs a party of the step "
                         "with a label (parties.<bank>.label)")
    compute = [str(p) for p in params.get("compute", COMPUTE_PARTIES)]
    if len(compute) != 2 or not set(compute) <= set(step.step_parties):
        raise ValueError(f"step {step.step_id!r}: params.compute must name two parties of the "
                         f"step, got {compute}")
    key = step.me.key or KEY
    report, scores = await rate(step.ctx, aligned, holder, label, compute,
                                int(params.get("steps", 5)),
                                float(params.get("learning_rate", 1.0)), key,
                                step.progress)
    tables = {}
    if scores is not None:
        keys = aligned.column(key).take(pa.array(np.arange(1, aligned.num_rows, 2)))
        tables["scores"] = pa.table({key: keys, "score": pa.array(scores)})
    return StepOutput(tables=tables, report=report)
