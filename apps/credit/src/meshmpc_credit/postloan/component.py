"""The ``credit.postloan`` job component (bank only): watch list and overdue management.

Runs after the early-warning model has scored the aligned observation rows
(``ml.scorecard`` / ``ml.predict`` give the bank table ``scores`` with a
``probability`` per row of ``aligned``; keys ``<credit_code>@<month>``, see
:mod:`.observation`). Partners take part in nothing here and return at once.

Params: ``as_of`` (month of the watch list, default the latest observation
month), ``monthly`` is read from ``parties.<bank>.monthly``. Each loan's PD is
that of its latest observation row up to ``as_of`` (the model scores loans
while they are current). Outputs at the bank: tables ``watch_list``,
``collection_list``, ``roll_rates``, ``vintages``; report ``{"as_of", "watch":
{level: n}, "collection": {"loans", "expected_loss"}, "roll_rates",
"vintages"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.loaders import load_table
from meshmpc.jobs.api import StepContext, StepOutput, find_table
from meshmpc_credit.inloan.signals import KEY, MonitorInputError, read_monthly
from meshmpc_credit.postloan.analysis import (
    BUCKETS,
    LEVELS,
    collection_list,
    roll_rates,
    roll_table,
    vintages,
    watch_list,
)


def latest_pd(aligned_keys: list[str], probability: np.ndarray, loans: list[str],
              as_of: int) -> np.ndarray:
    """Each loan's PD from its latest observation month <= as_of (NaN if none)."""
    split = [k.rsplit("@", 1) for k in aligned_keys]
    codes = np.array([s[0] for s in split], dtype=object)
    months = np.array([int(s[1]) for s in split], dtype=np.int64)
    use = months <= as_of
    order = np.lexsort((months[use], codes[use].astype(str)))
    code_u, pd_u = codes[use][order].astype(str), probability[use][order]
    last = np.r_[code_u[1:] != code_u[:-1], True] if code_u.size else np.zeros(0, bool)
    index = {c: float(p) for c, p in zip(code_u[last], pd_u[last], strict=True)}
    return np.array([index.get(k, np.nan) for k in loans], dtype=np.float64)


def _monthly_path(step: StepContext) -> Path:
    declared = step.me.extra.get("monthly")
    if not declared:
        raise MonitorInputError(f"party {step.party}: credit.postloan needs parties."
                                f"{step.party}.monthly (the bank's monthly snapshots)")
    path = Path(str(declared))
    return path if path.is_absolute() else Path(step.options.get("job_dir", ".")) / path


async def postloan(step: StepContext, inputs: Mapping[str, StepOutput],
                   params: Mapping[str, Any]) -> StepOutput:
    """``credit.postloan`` (see the module docstring)."""
    if step.party != step.label_holder:
        return StepOutput()
    aligned, scores = find_table(inputs, "aligned"), find_table(inputs, "scores")
    if aligned is None or scores is None or "probability" not in scores.column_names:
        raise MonitorInputError(f"party {step.party}, step {step.step_id}: credit.postloan "
                                f"needs 'aligned' (psi.align) and 'scores' with a probability "
                                f"(ml.scorecard or ml.predict) from earlier steps")
    path = _monthly_path(step)
    data = read_monthly(step.party, path)
    months = [int(k.rsplit("@", 1)[1]) for k in aligned.column(step.me.key or KEY).to_pylist()]
    as_of = int(params.get("as_of", max(months)))
    loans = data.keys.to_pylist()
    pd_ = latest_pd(aligned.column(step.me.key or KEY).to_pylist(),
                    scores.column("probability").to_numpy(), loans, as_of)
    dpd, balance = data.values["days_past_due"], data.values["balance"]
    watch = watch_list(data.keys, pd_, balance[:, as_of - 1])
    collect = collection_list(data.keys, pd_, balance[:, as_of - 1], dpd[:, as_of - 1])
    counts, shares = roll_rates(dpd)
    cohort = _cohorts(path, step.party, data.months)
    names, curves = vintages(cohort, dpd)
    report = {"as_of": as_of,
              "watch": {name: int(pc.sum(pc.equal(watch.column("level"), name)).as_py() or 0)
                        for name, _ in LEVELS},
              "collection": {"loans": collect.num_rows,
                             "expected_loss": float(pc.sum(collect.column("expected_loss"))
                                                    .as_py() or 0.0)},
              "roll_rates": roll_table(shares),
              "vintages": {n: curves[i].tolist() for i, n in enumerate(names)}}
    tables = {"watch_list": watch, "collection_list": collect,
              "roll_rates": pa.table({"from": list(BUCKETS),
                                      **{b: counts[:, j] for j, b in enumerate(BUCKETS)}}),
              "vintages": pa.table({"origination_month": names,
                                    **{f"mob_{m + 1}": curves[:, m]
                                       for m in range(curves.shape[1])}})}
    return StepOutput(tables=tables, report=report)


def _cohorts(path: Path, party: str, months: int) -> np.ndarray:
    table = load_table(path, [KEY, "origination_month"]) \
        if "origination_month" in load_table(path).column_names else None
    if table is None:
        raise MonitorInputError(f"party {party}, file {path}: column 'origination_month' is "
                                f"missing (needed for vintage curves)")
    values = table.column("origination_month").to_numpy(zero_copy_only=False)
    return np.asarray(values[::months]).astype(str)
