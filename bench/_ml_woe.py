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


WOE_BLOCK = 64
"""Columns binned at a time by :func:`plain_woe_coded` (bounded float temporaries)."""


def plain_woe_coded(x: np.ndarray, y: np.ndarray, bins: int) -> CodedMatrix:
    """The same WOE matrix in the clear (the launcher's yardstick) as 1-byte codes and a
    float32-rounded table per column: at 10^6 x 1,000 1 GB, not 8 GB of float64, binned
    WOE_BLOCK columns at a time."""
    n, d = x.shape
    codes = np.empty((n, d), dtype=np.uint8)
    values: list[np.ndarray] = []
    rules = MergeRules(bins, min_rows_for(n, 0.05, 50))
    for lo in range(0, d, WOE_BLOCK):
        hi = min(lo + WOE_BLOCK, d)
        table = party_table("p", x[:, lo:hi], None)
        fine = fine_bins(table, table.column_names, "quantile", bins, {}, [])
        counts = np.concatenate([
            np.stack([np.bincount(fine.groups[:, j], weights=y, minlength=f.n_bins),
                      np.bincount(fine.groups[:, j], minlength=f.n_bins)], axis=1)
            for j, f in enumerate(fine.features)]).astype(np.int64)
        plans = plan_party([f.layout() for f in fine.features], counts, rules)
        for j, f in enumerate(fine.features):
            plan = plans[f.name]
            codes[:, lo + j] = np.asarray(plan.mapping, dtype=np.uint8)[fine.groups[:, j]]
            values.append(np.asarray(plan.woe, dtype=np.float32).astype(np.float64))
    table_width = max((v.size for v in values), default=1)
    woe = np.zeros((d, table_width))
    for j, v in enumerate(values):
        woe[j, : v.size] = v
    return CodedMatrix(codes, woe)


def plain_woe(x: np.ndarray, y: np.ndarray, bins: int) -> np.ndarray:
    """The same WOE matrix in the clear, float64 (small sizes)."""
    return np.asarray(plain_woe_coded(x, y, bins))
