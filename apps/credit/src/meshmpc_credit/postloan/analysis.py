"""The bank's post-loan tables: watch list, collection list, roll rates, vintage curves.

All on the bank's own data (its loans' days past due and balances, and the
early-warning PD the joint model gave it), vectorised with numpy.

* watch list: loans by warning level from the PD: ``red`` >= 0.30,
  ``orange`` >= 0.15, ``yellow`` >= 0.05 (below: not listed);
* collection list: loans overdue in the last month, by expected loss
  PD x exposure (outstanding balance), largest first; a loan without a PD
  (not held by every partner) takes PD 1 for overdue 90+ else the book's
  mean PD, and says so in ``pd_source``;
* roll rates: share of loans moving from days-past-due bucket i in month m to
  bucket j in month m+1, pooled over months (rows sum to 1);
* vintages: by month of origination, the cumulative share of loans ever
  30+ days past due by months on book.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
EDGES = (1, 31, 61, 91)
LEVELS = (("red", 0.30), ("orange", 0.15), ("yellow", 0.05))


def buckets(dpd: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Bucket index 0..4 of days past due (0, 1-30, 31-60, 61-90, 91+)."""
    return np.searchsorted(np.asarray(EDGES), dpd, side="right").astype(np.int64)


def warning_level(pd_: npt.NDArray[np.float64]) -> npt.NDArray[np.str_]:
    """"red" / "orange" / "yellow" / "" per PD."""
    out = np.full(pd_.shape, "", dtype="<U6")
    for name, floor in reversed(LEVELS):
        out = np.where(pd_ >= floor, name, out)
    return out


def watch_list(keys: pa.Array, pd_: npt.NDArray[np.float64],
               exposure: npt.NDArray[np.float64]) -> pa.Table:
    """Loans at or above the yellow level, highest PD first."""
    level = warning_level(pd_)
    rows = np.flatnonzero(level != "")
    rows = rows[np.argsort(-pd_[rows], kind="stable")]
    return pa.table({"credit_code": keys.take(pa.array(rows)), "pd_3m": pd_[rows],
                     "exposure": exposure[rows], "level": level[rows]})


def collection_list(keys: pa.Array, pd_: npt.NDArray[np.float64],
                    exposure: npt.NDArray[np.float64],
                    dpd: npt.NDArray[np.float64]) -> pa.Table:
    """Overdue loans by expected loss = PD x exposure, largest first."""
    known = ~np.isnan(pd_)
    fallback = np.where(dpd >= 91, 1.0, float(np.nanmean(pd_)) if known.any() else 1.0)
    used = np.where(known, pd_, fallback)
    rows = np.flatnonzero(dpd > 0)
    loss = used * exposure
    rows = rows[np.lexsort((-dpd[rows], -loss[rows]))]
    return pa.table({"credit_code": keys.take(pa.array(rows)), "days_past_due": dpd[rows],
                     "bucket": np.array(BUCKETS)[buckets(dpd[rows])],
                     "exposure": exposure[rows], "pd": used[rows],
                     "pd_source": np.where(known[rows], "joint model", "fallback"),
                     "expected_loss": loss[rows], "priority": np.arange(1, rows.size + 1)})


def roll_rates(dpd: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64],
                                                      npt.NDArray[np.float64]]:
    """(counts, row shares) of bucket transitions month m -> m+1, loans x months input."""
    b = buckets(dpd)
    pairs = b[:, :-1].ravel() * len(BUCKETS) + b[:, 1:].ravel()
    counts = np.bincount(pairs, minlength=len(BUCKETS) ** 2).reshape(len(BUCKETS), -1)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    return counts, shares


def vintages(cohort: npt.NDArray[np.str_], dpd: npt.NDArray[np.float64],
             threshold: float = 30) -> tuple[list[str], npt.NDArray[np.float64]]:
    """(cohorts, cohorts x months) cumulative share ever > ``threshold`` days past due."""
    ever = np.maximum.accumulate(dpd > threshold, axis=1)
    names = sorted(set(cohort.tolist()))
    index = np.searchsorted(np.asarray(names), cohort)
    sums = np.zeros((len(names), dpd.shape[1]))
    np.add.at(sums, index, ever.astype(np.float64))
    return names, sums / np.bincount(index, minlength=len(names))[:, None]


def roll_table(shares: npt.NDArray[np.float64], names: Sequence[str] = BUCKETS) -> list[dict]:
    """The roll-rate matrix as report rows {"from": bucket, bucket: share, ...}."""
    return [{"from": names[i], **{names[j]: float(shares[i, j]) for j in range(len(names))}}
            for i in range(len(names))]
