"""WOE features for the logistic-regression benchmark (``--woe``): secure and plaintext.

The party side (:func:`secure_woe`) runs ``ml.binning`` (quantile bins, WOE from the
bank's label counts, :func:`meshmpc.ml.binning_protocol.secure_binning`) on the party's
own synthetic columns and returns its compact WOE matrix; the launcher's yardstick
(:func:`plain_woe`) bins the same columns with the same functions and merge rules in the
clear, so scikit-learn is fitted on exactly the features the secure model sees (the
secure binning equals the plaintext one: tests/ml/test_binning.py). Bins use every
aligned row's label, test rows included, on both sides alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from meshmpc.jobs.api import PartyInput, StepContext
from meshmpc.ml.binning_protocol import plan_party, secure_binning
from meshmpc.ml.bins import fine_bins
from meshmpc.ml.coded import CodedMatrix
from meshmpc.ml.merge import MergeRules, min_rows_for
from meshmpc.net import Context

LABEL = "y"


def party_table(party: str, x: np.ndarray, y: np.ndarray | None) -> pa.Table:
    """The party's columns as a float32 table (the label beside them at the bank)."""
    columns = {f"{party}_{j:04d}": pa.array(np.asarray(x[:, j], dtype=np.float32))
               for j in range(x.shape[1])}
    if y is not None:
        columns[LABEL] = pa.array(y.astype(np.int8))
    return pa.table(columns)


async def secure_woe(ctx: Context, parties: list[str], x: np.ndarray, y: np.ndarray | None,
                     bins: int) -> CodedMatrix:
    """This party's WOE matrix from ``ml.binning`` over the mesh (label at ``parties[0]``)."""
    specs = {p: PartyInput(p, label=LABEL if i == 0 else None) for i, p in enumerate(parties)}
    table = party_table(ctx.party, x, y)
    with tempfile.TemporaryDirectory(prefix="bench-woe-") as tmp:
        step = StepContext(ctx=ctx.scope("woe"), job_name="bench", step_id="bins",
                           party=ctx.party, parties=specs, step_parties=parties,
                           party_params={}, workdir=Path(tmp) / ctx.party,
                           options={"state_dir": tmp})
        params = {"method": "quantile", "bins": bins, "woe_dtype": "float32"}
        outcome = await secure_binning(step, table, params)
    del table
    names = [c for c in outcome.features.column_names if c != LABEL]
    return CodedMatrix.from_table(outcome.features, names)


def plain_woe(x: np.ndarray, y: np.ndarray, bins: int) -> np.ndarray:
    """The same WOE matrix in the clear (the launcher's yardstick), float64."""
    table = party_table("p", x, None)
    fine = fine_bins(table, table.column_names, "quantile", bins, {}, [])
    layout = [f.layout() for f in fine.features]
    counts = np.concatenate([
        np.stack([np.bincount(fine.groups[:, j], weights=y, minlength=f.n_bins),
                  np.bincount(fine.groups[:, j], minlength=f.n_bins)], axis=1)
        for j, f in enumerate(fine.features)]).astype(np.int64)
    rules = MergeRules(bins, min_rows_for(x.shape[0], 0.05, 50))
    plans = plan_party(layout, counts, rules)
    out = np.empty(x.shape, dtype=np.float64)
    for j, f in enumerate(fine.features):
        plan = plans[f.name]
        out[:, j] = plan.woe.astype(np.float32)[plan.mapping[fine.groups[:, j]]]
    return out
