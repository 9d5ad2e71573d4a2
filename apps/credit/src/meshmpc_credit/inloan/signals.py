"""Each party's monthly behaviour points and flags, from its own monthly snapshots.

A party computes, on its own rows only and in plaintext, its part of the
monthly behaviour score (penalty points, <= 0 for partners; the bank's part
adds the base points and its days-past-due penalty) and its behaviour flags.
The snapshots are a complete firm x month grid (one row per firm and month
1..M, as the reference generator writes them); anything else is rejected with
the party, file and column named. Everything is vectorised over the
(firms, months) grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meshmpc.data.loaders import load_table
from meshmpc.errors import DataError

KEY = "credit_code"
FLAG_LITIGATION = 1
FLAG_MULTI_BORROWING = 2
FLAG_TELECOM_INSTABILITY = 4
FLAG_NEW_LIST_HIT = 8
FLAG_NAMES = {FLAG_LITIGATION: "new_litigation", FLAG_MULTI_BORROWING: "new_multi_borrowing",
              FLAG_TELECOM_INSTABILITY: "telecom_instability", FLAG_NEW_LIST_HIT: "new_list_hit"}
COLUMNS = {
    "bank": ("days_past_due", "balance"),
    "gov": ("tax_paid", "new_lawsuits", "new_penalties"),
    "fin": ("new_applications", "new_loans", "overdue_count"),
    "telco": ("arrears_amount", "active_days", "number_changed"),
}
BASE_POINTS = 600.0
GRANT_DATE = np.datetime64("2025-06-30")
"""Month m of the snapshots ends m months after this date (for dated list entries)."""


class MonitorInputError(DataError):
    """Monitoring input is unusable; the message names party, file, column and row."""


@dataclass
class Monthly:
    """One party's snapshots as a firms x months grid."""

    party: str
    keys: pa.Array
    months: int
    values: dict[str, npt.NDArray[np.float64]]


def read_monthly(party: str, path: Path) -> Monthly:
    """Load and check a party's monthly snapshot file."""
    if not path.is_file():
        raise MonitorInputError(f"party {party}: monthly snapshots {path} do not exist")
    wanted = [KEY, "month", *COLUMNS[party]]
    table = load_table(path)
    for column in wanted:
        if column not in table.column_names:
            raise MonitorInputError(f"party {party}, file {path}: column {column!r} is missing "
                                    f"(columns: {', '.join(table.column_names)})")
    month = table.column("month").to_numpy()
    months = int(month.max()) if month.size else 0
    if months == 0 or table.num_rows % months:
        raise MonitorInputError(f"party {party}, file {path}: {table.num_rows} rows are not a "
                                f"firm x month grid of {months} months")
    grid = month.reshape(-1, months)
    bad = np.flatnonzero((grid != np.arange(1, months + 1)).any(axis=1))
    if bad.size:
        raise MonitorInputError(f"party {party}, file {path}, column 'month': firm block at "
                                f"row {int(bad[0]) * months} is not months 1..{months} in order")
    values = {}
    for column in COLUMNS[party]:
        data = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
        nan = np.flatnonzero(np.isnan(data))
        if nan.size:
            raise MonitorInputError(f"party {party}, file {path}, column {column!r}: missing "
                                    f"value in row {int(nan[0])}")
        values[column] = data.reshape(-1, months)
    keys = table.column(KEY).combine_chunks().take(pa.array(np.arange(0, table.num_rows, months)))
    return Monthly(party, keys, months, values)


def _previous(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.concatenate([x[:, :1], x[:, :-1]], axis=1)


def partner_points(data: Monthly) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    """(points, flags), each firms x months, for a partner (penalties are <= 0)."""
    v = data.values
    if data.party == "gov":
        ratio = v["tax_paid"] / np.maximum(_previous(v["tax_paid"]), 1e-9)
        tax_drop = np.clip(0.7 - ratio, 0, 0.7) / 0.7  # only falls of more than 30 %
        points = -(20 * np.minimum(v["new_lawsuits"], 3) + 10 * np.minimum(v["new_penalties"], 3)
                   + 30 * tax_drop)
        flags = np.where((v["new_lawsuits"] > 0) | (v["new_penalties"] > 0), FLAG_LITIGATION, 0)
    elif data.party == "fin":
        points = -(8 * np.minimum(v["new_applications"], 5) + 12 * np.minimum(v["new_loans"], 3)
                   + 25 * np.minimum(v["overdue_count"], 3))
        flags = np.where((v["new_loans"] >= 1) & (v["new_applications"] >= 2),
                         FLAG_MULTI_BORROWING, 0)
    elif data.party == "telco":
        unstable = (v["arrears_amount"] > 0) | (v["active_days"] < 15) | (v["number_changed"] > 0)
        points = -(20 * (v["arrears_amount"] > 0) + 2 * np.clip(25 - v["active_days"], 0, 25)
                   + 15 * (v["number_changed"] > 0))
        flags = np.where(unstable, FLAG_TELECOM_INSTABILITY, 0)
    else:
        raise MonitorInputError(f"party {data.party}: no behaviour signals are defined for it")
    return points.astype(np.float64), flags.astype(np.uint8)


def bank_points(data: Monthly) -> npt.NDArray[np.float64]:
    """The bank's part: base points minus its days-past-due penalty, firms x months."""
    return BASE_POINTS - np.minimum(data.values["days_past_due"], 120.0)


def list_hits(party: str, path: Path | None, keys: pa.Array, months: int) -> npt.NDArray[np.uint8]:
    """FLAG_NEW_LIST_HIT where a firm enters the partner's risk list in that month."""
    out = np.zeros((len(keys), months), np.uint8)
    if path is None or not path.is_file():
        return out
    table = load_table(path)
    for column in (KEY, "listed_date"):
        if column not in table.column_names:
            raise MonitorInputError(f"party {party}, file {path}: column {column!r} is missing")
    dates = table.column("listed_date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    age = (dates.astype("datetime64[M]") - GRANT_DATE.astype("datetime64[M]")).astype(np.int64)
    index = pa.compute.index_in(table.column(KEY), value_set=keys).to_numpy(zero_copy_only=False)
    ok = ~np.isnan(index.astype(float)) & (age >= 1) & (age <= months)
    rows = index[ok].astype(np.int64)
    out[rows, age[ok] - 1] = FLAG_NEW_LIST_HIT
    return out
