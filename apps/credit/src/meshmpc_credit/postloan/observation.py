"""Each party's early-warning training table, built locally from its own monthly snapshots.

One row per firm and observation month t in ``months`` (key ``<credit_code>@<t>``
so every party derives the same keys without talking): the party's month-t
values and their change against the mean of the three months before. The bank
adds the label ``overdue_3m`` (days past due > 0 in one of months t+1..t+3)
and keeps only loans current at t (days past due 0), so the model warns
before the first missed payment. All vectorised over the firm x month grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meshmpc_credit.inloan.signals import COLUMNS, MonitorInputError, read_monthly

LABEL = "overdue_3m"
HORIZON = 3
DEFAULT_MONTHS = tuple(range(4, 10))


def observation_table(party: str, path: Path, months: Sequence[int] = DEFAULT_MONTHS) -> pa.Table:
    """The party's rows for the observation months (see the module docstring)."""
    data = read_monthly(party, path)
    bad = [t for t in months if t < 1 or t + HORIZON > data.months]
    if bad:
        raise MonitorInputError(f"party {party}, file {path}: observation month {bad[0]} needs "
                                f"months 1..{bad[0] + HORIZON}; the file has {data.months}")
    n, ts = len(data.keys), np.asarray(months, dtype=np.int64)
    codes = np.asarray(data.keys.to_pylist(), dtype=object)
    keys = np.char.add(np.char.add(np.repeat(codes, ts.size).astype(str), "@"),
                       np.tile(ts, n).astype(str))
    columns: dict[str, np.ndarray] = {"credit_code": keys}
    for name in COLUMNS[party]:
        grid = data.values[name]
        now = grid[:, ts - 1]
        before = np.stack([grid[:, np.maximum(ts - k, 0) - 1] for k in (1, 2, 3)]).mean(axis=0)
        columns[name] = now.ravel()
        columns[f"{name}_chg3"] = (now - before).ravel()
    keep = np.ones(n * ts.size, bool)
    if party == "bank":
        dpd = data.values["days_past_due"]
        future = np.stack([dpd[:, ts - 1 + k] for k in range(1, HORIZON + 1)]).max(axis=0)
        columns[LABEL] = (future > 0).astype(np.int64).ravel()
        keep = (dpd[:, ts - 1] == 0).ravel()
        for name in ("days_past_due", "days_past_due_chg3"):
            columns.pop(name)
    return pa.table({k: v[keep] for k, v in columns.items()})


def write_observations(party: str, monthly: Path, out: Path,
                       months: Sequence[int] = DEFAULT_MONTHS) -> Path:
    """Write the party's table to ``out`` (Parquet) and return the path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(observation_table(party, monthly, months), out)
    return out
