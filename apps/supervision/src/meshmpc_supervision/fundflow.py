"""``supervision.fundflow``: joint fund-flow statistics of several banks for the regulator.

Every bank holds loan-level records with violation flags (funds diverted to real estate or
securities, back to the borrower, used outside the declared purpose). The regulator learns,
per public cell (region x institution type x month), the count and amount of all and of
flagged loans, without any bank showing its loans to the regulator or to another bank:

1. each bank totals its own loans per cell (plaintext, local: one ``bincount`` per
   statistic) and secret-shares the totals between two compute parties: the regulator
   gets a PRG seed, the co-aggregator (a bank named in the job, by default the first) the
   totals minus that seed's stream, so neither sees a bank's totals;
2. the two compute parties add the shares of all banks (local), and the co-aggregator
   adds discrete-Laplace noise to its share when the job sets ``epsilon`` (the regulator
   never learns the noise);
3. a secure comparison (semi2k, OT-made correlations, no dealer) decides per cell whether
   it has at least ``min_count`` loans and ``min_institutions`` contributing banks; only
   that yes/no is opened, to the two compute parties;
4. only the cells that pass are opened, to the regulator alone;
5. quantiles of loan amounts (without noise only): each bank also shares its per-cell
   histogram of amounts over public log-spaced buckets; for every published cell and
   quantile q the compute parties compare the shared cumulative counts with q times the
   loan count (sign bits, no division) and open to the regulator only the bucket the
   quantile falls in.

What each party learns, costs and the noise budget: protocols/supervision-fundflow.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.loaders import load_table
from meshmpc.errors import DataError
from meshmpc.jobs.api import StepContext, StepOutput
from meshmpc.jobs.errors import JobError
from meshmpc.mpc.factory import make_suite
from meshmpc_supervision.grid import INSTITUTION_TYPES, REGIONS, STATISTICS, Grid, default_months
from meshmpc_supervision.sharing import RING, collect, roles, share_out

FLAG_COLUMNS = ("to_real_estate", "to_securities", "back_to_borrower", "off_purpose")
DEFAULT_QUANTILES = (0.25, 0.5, 0.75)
TOTALS = 5
"""Per-cell totals before the amount histogram: loans, flagged, amount, flagged amount,
1 if the bank lends there."""


async def fundflow(step: StepContext, inputs: Mapping[str, Any], params: Mapping[str, Any]
                   ) -> StepOutput:
    """The job component (see the module docstring)."""
    plan = _plan(step, params)
    ctx = step.ctx.scope("fundflow")
    own = None
    if step.party in plan["banks"]:
        own = await share_out(ctx, step.party, _bank_totals(step, plan), plan)
    if step.party not in plan["compute"]:
        return StepOutput(report={"role": "bank", "cells": plan["grid"].size,
                                  "learnt": "nothing (totals sent as secret shares)"})
    width = TOTALS + max(len(plan["edges"]) - 1, 0)
    share, _ = await collect(ctx, step.party, plan, own, (plan["grid"].size, width))
    if step.party == plan["co"] and plan["epsilon"]:
        share = RING.add(share, RING.from_int(_noise(plan)))
    suite = await make_suite(ctx.subgroup(plan["compute"]), "semi2k",
                             triples=str(params.get("triples", "ot")))
    published = await _publishable(suite, share, plan)
    kept = np.ascontiguousarray(RING.getitem(share, published))
    values = await suite.reveal(np.ascontiguousarray(kept[:, :TOTALS]), to=plan["regulator"])
    buckets = await _quantile_buckets(suite, kept, plan)
    report = {"role": "regulator" if step.party == plan["regulator"] else "co-aggregator",
              "cells": plan["grid"].size, "published": int(published.sum()),
              "suppressed": int((~published).sum()), "epsilon": plan["epsilon"]}
    if step.party != plan["regulator"]:
        return StepOutput(report=report)
    assert values is not None
    table = _result_table(plan["grid"], published, values.view(np.int64).reshape(-1, TOTALS))
    for j, q in enumerate(plan["quantiles"]):
        assert buckets is not None
        table = table.append_column(f"amount_p{q / 100:g}_fen",
                                    pa.array(bucket_middle(plan["edges"], buckets[:, j])))
    out = StepOutput(tables={"fundflow": table}, report=report)
    from meshmpc_supervision.report import write_report

    out.files.append(write_report(table, plan, step.workdir))
    return out


# ----- the plan every party derives from the public job file ------------------------------

def _plan(step: StepContext, params: Mapping[str, Any]) -> dict[str, Any]:
    regulator, banks, co = roles(step, params, "fund-flow monitoring")
    types = {b: str(step.parties[b].extra.get("type", "")) for b in banks}
    for bank, kind in types.items():
        if kind not in INSTITUTION_TYPES:
            raise JobError(step.party, step.step_id, f"parties.{bank}.type {kind!r}: use one of "
                           f"{', '.join(INSTITUTION_TYPES)}")
    grid = Grid(tuple(params.get("regions") or REGIONS), tuple(INSTITUTION_TYPES),
                tuple(params.get("months") or default_months()))
    epsilon = params.get("epsilon")
    if epsilon is not None and not (isinstance(epsilon, int | float) and epsilon > 0):
        raise JobError(step.party, step.step_id, "params.epsilon must be a positive number")
    return {"regulator": regulator, "banks": banks, "co": co, "compute": [regulator, co],
            "types": types, "grid": grid, "epsilon": float(epsilon) if epsilon else None,
            "min_count": int(params.get("min_count", 10)),
            "min_institutions": int(params.get("min_institutions", 2)),
            "amount_clip": int(params.get("amount_clip", 10**11)),
            "flags": tuple(params.get("flags") or FLAG_COLUMNS),
            **_quantile_plan(step, params, epsilon)}


def _quantile_plan(step: StepContext, params: Mapping[str, Any], epsilon: Any
                   ) -> dict[str, Any]:
    """Quantiles (in 1/10,000) and the public bucket edges of the amount histograms."""
    asked = params.get("quantiles")
    if epsilon is not None:
        if asked:
            raise JobError(step.party, step.step_id, "params.quantiles: quantiles are not "
                           "released under differential privacy (params.epsilon); drop one")
        return {"quantiles": (), "edges": np.zeros(0)}
    quantiles = DEFAULT_QUANTILES if asked is None else tuple(asked)
    parts = []
    for q in quantiles:
        scaled = round(float(q) * 10_000)
        if not 0 < scaled < 10_000 or abs(float(q) * 10_000 - scaled) > 1e-6:
            raise JobError(step.party, step.step_id, f"params.quantiles: {q!r} must be in "
                           "(0, 1) with at most four decimals")
        parts.append(scaled)
    buckets = int(params.get("quantile_buckets", 64))
    low, high = (float(v) for v in params.get("quantile_range_fen", (1e6, 1e12)))
    if not (2 <= buckets <= 1024 and 0 < low < high):
        raise JobError(step.party, step.step_id, "params.quantile_buckets (2..1024) and "
                       "params.quantile_range_fen ([low, high], 0 < low < high)")
    edges = np.geomspace(low, high, buckets + 1) if parts else np.zeros(0)
    return {"quantiles": tuple(parts), "edges": edges}


# ----- a bank's side ----------------------------------------------------------------------

def _bank_totals(step: StepContext, plan: Mapping[str, Any]) -> np.ndarray:
    """This bank's (cells, 5) totals: loans, flagged, amount, flagged amount, 1 if any."""
    source = step.me.data
    if not source:
        raise JobError(step.party, step.step_id, f"parties.{step.party}.data: the bank's "
                       "loan file is missing")
    columns = ["region", "month", "amount_fen", *plan["flags"]]
    table = load_table(source, columns=columns)
    grid: Grid = plan["grid"]
    region = _codes(table, "region", grid.regions, step.party, source)
    month = _codes(table, "month", grid.months, step.party, source)
    amount = table.column("amount_fen").to_numpy(zero_copy_only=False).astype(np.int64)
    bad = np.flatnonzero(amount < 0)
    if bad.size:
        raise DataError(f"party {step.party}, file {source}, column amount_fen, row "
                        f"{bad[0] + 1}: negative amount; amounts are in fen, >= 0")
    if plan["epsilon"]:
        amount = np.minimum(amount, plan["amount_clip"])  # bounds one loan's influence
    flagged = np.zeros(table.num_rows, dtype=bool)
    for flag in plan["flags"]:
        flagged |= table.column(flag).fill_null(False).to_numpy(zero_copy_only=False)
    kind = list(grid.types).index(plan["types"][step.party])
    cell = (region * len(grid.types) + kind) * len(grid.months) + month
    buckets = max(len(plan["edges"]) - 1, 0)
    totals = np.zeros((grid.size, TOTALS + buckets), dtype=np.int64)
    totals[:, 0] = np.bincount(cell, minlength=grid.size)
    totals[:, 1] = np.bincount(cell, weights=flagged, minlength=grid.size).astype(np.int64)
    totals[:, 2] = exact_sums(cell, amount, grid.size)
    totals[:, 3] = exact_sums(cell[flagged], amount[flagged], grid.size)
    totals[:, 4] = totals[:, 0] > 0
    if buckets:
        bucket = bucket_of(amount, plan["edges"])
        totals[:, TOTALS:] = np.bincount(cell * buckets + bucket, minlength=grid.size * buckets
                                         ).reshape(grid.size, buckets)
    return totals


def bucket_of(amount: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The histogram bucket of each amount (below the range: the first, above: the last)."""
    return np.clip(np.searchsorted(edges, amount, side="right") - 1, 0, len(edges) - 2)


def exact_sums(cell: np.ndarray, amount: np.ndarray, size: int) -> np.ndarray:
    """Exact integer per-cell sums (bincount's float weights would round past 2^53):
    one stable sort and one ``add.reduceat``."""
    out = np.zeros(size, dtype=np.int64)
    if cell.size == 0:
        return out
    order = np.argsort(cell, kind="stable")
    keys, starts = np.unique(cell[order], return_index=True)
    out[keys] = np.add.reduceat(amount[order], starts)
    return out


def _codes(table: pa.Table, column: str, allowed: tuple[str, ...], party: str,
           source: str) -> np.ndarray:
    """Each row's index in ``allowed``; an error naming the first row outside it."""
    values = pc.cast(table.column(column), pa.string())
    index = pc.index_in(values, value_set=pa.array(allowed)).to_numpy(zero_copy_only=False)
    missing = np.flatnonzero(np.isnan(index)) if index.dtype.kind == "f" else np.array([])
    if missing.size:
        row = int(missing[0])
        raise DataError(f"party {party}, file {source}, column {column}, row {row + 1}: "
                        f"{values[row].as_py()!r} is not in the job's {column} list "
                        f"({len(allowed)} values); fix the row or add the value to "
                        f"params.{column}s")
    return index.astype(np.int64)


# ----- the compute parties ----------------------------------------------------------------

async def _publishable(suite: Any, share: np.ndarray, plan: Mapping[str, Any]) -> np.ndarray:
    """Cells with >= min_count loans and >= min_institutions banks (opened: yes/no only)."""
    thresholds = RING.from_int(np.array([plan["min_count"], plan["min_institutions"]]))
    counts = RING.concatenate([RING.getitem(share, (slice(None), 0)),
                               RING.getitem(share, (slice(None), 4))], axis=0)
    limit = np.repeat(thresholds, share.shape[0])
    if suite.ctx.party == plan["regulator"]:  # subtract the public thresholds once
        counts = RING.sub(counts, limit)
    below = await suite.msb(counts)
    opened = await suite.reveal(below)
    assert opened is not None
    below_any = (opened[: share.shape[0]] | opened[share.shape[0]:]).astype(bool)
    return ~below_any


async def _quantile_buckets(suite: Any, kept: np.ndarray, plan: Mapping[str, Any]
                            ) -> np.ndarray | None:
    """For each published cell and quantile q (in 1/10,000): the bucket holding the
    ceil(q N)-th smallest amount, i.e. the number of buckets k whose cumulative count
    C_k is below q N, from the sign bits of 10,000 C_k - q N (opened to the regulator
    only, as a count). The last bucket always holds it and is not compared."""
    quantiles = plan["quantiles"]
    if not quantiles or kept.shape[0] == 0:
        return np.zeros((kept.shape[0], len(quantiles)), dtype=np.int64) if \
            suite.ctx.party == plan["regulator"] else None
    histogram = kept[:, TOTALS:-1]
    cumulative = np.cumsum(histogram, axis=1, dtype=np.uint64)  # linear: on the shares
    loans = kept[:, 0:1]
    gaps = [RING.sub(RING.mul(cumulative, RING.from_int(10_000)),
                     RING.mul(loans, RING.from_int(q))) for q in quantiles]
    below = await suite.msb(np.ascontiguousarray(np.stack(gaps, axis=2)))
    counts = np.ascontiguousarray(below.sum(axis=1, dtype=np.uint64))  # (cells, quantiles)
    opened = await suite.reveal(counts, to=plan["regulator"])
    return None if opened is None else opened.view(np.int64)


def bucket_middle(edges: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """The geometric middle of each bucket, in fen: the published quantile estimate."""
    return np.rint(np.sqrt(edges[bucket] * edges[bucket + 1])).astype(np.int64)


def _noise(plan: Mapping[str, Any]) -> np.ndarray:
    """Discrete Laplace noise for loans, flagged, amount and flagged amount (the budget
    split in four; amounts scaled by the clip), none on the institutions count."""
    grid: Grid = plan["grid"]
    eps = plan["epsilon"] / 4.0
    noise = np.zeros((grid.size, TOTALS), dtype=np.int64)
    for column, sensitivity in enumerate((1, 1, plan["amount_clip"], plan["amount_clip"])):
        noise[:, column] = discrete_laplace(grid.size, eps / sensitivity)
    return noise


def discrete_laplace(n: int, eps: float) -> np.ndarray:
    """``n`` draws of the two-sided geometric distribution P(k) ~ exp(-eps |k|), as the
    difference of two geometric variables, from the OS's randomness (inverse CDF on
    53-bit uniforms)."""
    q = math.exp(-eps)

    def geometric() -> np.ndarray:
        words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
        u = ((words >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53  # (0, 1]
        return np.floor(np.log(u) / math.log(q)).astype(np.int64)

    return geometric() - geometric()


def _result_table(grid: Grid, published: np.ndarray, values: np.ndarray) -> pa.Table:
    cells = [c for c, keep in zip(grid.cells(), published, strict=True) if keep]
    loans, flagged = values[:, 0], values[:, 1]
    amount, flagged_amount = values[:, 2], values[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(loans > 0, flagged / np.maximum(loans, 1), np.nan)
        amount_share = np.where(amount > 0, flagged_amount / np.maximum(amount, 1), np.nan)
    return pa.table({
        "region": [c[0] for c in cells], "institution_type": [c[1] for c in cells],
        "month": [c[2] for c in cells], "loans": loans, "flagged": flagged,
        "flagged_rate": rate, "amount_fen": amount, "flagged_amount_fen": flagged_amount,
        "flagged_amount_share": amount_share, "institutions": values[:, 4]})


__all__ = ["STATISTICS", "discrete_laplace", "exact_sums", "fundflow"]
