"""Monthly snapshots after the loan is granted, and the partners' risk lists.

Snapshots (one row per bank applicant and month, months 1..M after granting)
feed in-loan monitoring and post-loan early warning:

* bank: outstanding balance, days past due, status and origination month; the worst days past
  due over the 12 months equals the applicant's ``days_overdue`` label;
* gov / fin / telco: monthly behaviour that deteriorates about two months
  before the firm first misses a payment (falling tax and sales, new lawsuits;
  new platform loans and overdues; phone-bill arrears, fewer calls), so a
  monitor that joins them can warn before the bank sees the overdue.

Risk lists (fraud / blacklist), one per partner, one row per listed firm,
derived from the partner's own view of the firm.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from meshmpc.crypto.hashing import item_hash
from meshmpc.data.schema import Column
from meshmpc_credit.datagen_frame import Firms, Frame, lognormal_level

STATUS = ("current", "overdue", "default", "closed")
COHORTS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")
RISK_LEVELS = ("medium", "high")
LIST_TYPES = {
    "gov": ("abnormal_operation", "dishonest_debtor", "serious_violation"),
    "fin": ("multi_lending", "malicious_default", "fraud"),
    "telco": ("unverified_line", "collection_target", "telecom_fraud"),
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def onset_months(rng: np.random.Generator, days_overdue: np.ndarray) -> tuple[np.ndarray, ...]:
    """Peak month and first-overdue month (1-based) for each applicant's ``days_overdue``."""
    months_late = np.ceil(days_overdue / 30).astype(np.int64)
    peak = np.maximum(months_late, rng.integers(1, 13, len(days_overdue)))
    peak = np.minimum(np.maximum(peak, months_late), 12)
    onset = np.where(days_overdue > 0, peak - months_late + 1, 99)
    return peak, onset


def _grid(n: int, months: int) -> tuple[np.ndarray, np.ndarray]:
    """Row index and month (1..months) of the n x months snapshot rows, firm-major."""
    return np.repeat(np.arange(n), months), np.tile(np.arange(1, months + 1), n)


def bank_monthly(rng: np.random.Generator, keys: pa.Array, amount: np.ndarray, term: np.ndarray,
                 days_overdue: np.ndarray, timeline: tuple[np.ndarray, ...],
                 months: int) -> Frame:
    """The bank's loan snapshots (balance, days past due, status).

    ``timeline`` is ``(peak, onset)`` from :func:`onset_months`, shared with the
    partners' snapshots so their warning signs precede this first overdue month.
    """
    peak, onset = timeline
    row, month = _grid(len(keys), months)
    worst = days_overdue[row]
    dpd = np.where(month <= peak[row], np.clip(worst - 30 * (peak[row] - month), 0, worst),
                   np.where(worst >= 90, worst, 0))
    paid_until = np.minimum(month, onset[row] - 1)
    balance = amount[row] * np.clip(1 - paid_until / term[row], 0, 1)
    status = np.where(dpd >= 90, 2, np.where(dpd > 0, 1, np.where(balance <= 0, 3, 0)))
    frame = _snapshot_frame(rng, keys, row, month)
    frame.num("balance", balance, "CNY", 0, 1e9, "principal outstanding at month end")
    frame.num("days_past_due", dpd, "day", 0, 360, "days past due at month end", "int")
    frame.cat("status", status, STATUS, "loan status at month end")
    frame.cat("origination_month", origination_cohort(keys)[row], COHORTS,
              "calendar month the loan was granted (vintage)")
    return frame


def origination_cohort(keys: pa.Array) -> np.ndarray:
    """Index into COHORTS of each loan's origination month.

    Derived from a hash of the key rather than the generator's random stream,
    so adding the column leaves every other generated value unchanged.
    """
    digest = item_hash(keys, domain=b"credit.vintage")
    return (digest[:, 0].astype(np.int64) % len(COHORTS)).astype(np.int64)


def _snapshot_frame(rng: np.random.Generator, keys: pa.Array, row: np.ndarray,
                    month: np.ndarray) -> Frame:
    frame = Frame(rng, len(row))
    frame.add(key_column(), keys.take(pa.array(row)))
    frame.num("month", month, "month", 1, 120, "months since the loan was granted", "int",
              sensitivity="internal")
    return frame


def key_column() -> Column:
    """The ``credit_code`` key column every table starts with."""
    return Column("credit_code", "string", format="uscc", nullable=False,
                  sensitivity="confidential",
                  description="unified social credit code (GB 32100-2015)")


def partner_monthly(party: str, rng: np.random.Generator, keys: pa.Array, firms: Firms,
                    onset: np.ndarray, severe: np.ndarray, months: int) -> Frame:
    """A partner's monthly behaviour for the applicants it holds."""
    row, month = _grid(firms.n, months)
    warn = _sigmoid(1.5 * (month - onset[row] + 2)) * np.where(severe[row], 1.0, 0.5)
    frame = _snapshot_frame(rng, keys, row, month)
    n, z, s = len(row), rng.standard_normal, firms.size[row]
    if party == "gov":
        sales = np.exp(2.9 + s + 0.2 * firms.health[row] + 0.15 * z(n) - 1.2 * warn)
        frame.num("tax_paid", sales * 0.07, "CNY 10k", 0, 1e8, "tax paid this month")
        frame.num("invoice_amount", sales, "CNY 10k", 0, 1e8, "sales invoiced this month")
        frame.count("new_lawsuits", 0.02 + 0.6 * warn, 100, "lawsuits filed against it")
        frame.count("new_penalties", 0.01 + 0.2 * warn, 100, "administrative penalties")
    elif party == "fin":
        frame.count("new_applications", np.exp(-1.5 + 0.8 * firms.leverage[row]) + 3 * warn,
                    1000, "loan applications this month")
        frame.count("new_loans", np.exp(-2.0 + 0.5 * firms.leverage[row]) + warn, 1000,
                    "loans granted this month")
        frame.count("overdue_count", 0.02 + 1.5 * warn, 1000, "repayments gone overdue")
        frame.num("outstanding_balance", lognormal_level(rng, 11 + 0.5 * s, 0.3)
                  * (1 + warn), "CNY", 0, 1e9, "platform balance at month end")
    else:
        bill = lognormal_level(rng, 5.5 + 0.7 * s, 0.2)
        frame.num("arrears_amount", bill * (rng.random(n) < 0.03 + 0.6 * warn), "CNY", 0, 1e7,
                  "phone bill in arrears")
        frame.num("call_minutes", bill * 2.4 * np.exp(-0.8 * warn), "minute", 0, 1e8,
                  "call minutes this month")
        frame.num("active_days", 30 * _sigmoid(2.5 + 0.3 * z(n)) - 8 * warn, "day", 0, 31,
                  "days with traffic", "int")
        frame.flag("number_changed", 0.005 + 0.15 * warn, "main number changed this month")
    return frame


def risk_list(party: str, rng: np.random.Generator, keys: pa.Array, firms: Firms,
              table: pa.Table) -> Frame | None:
    """The partner's fraud / blacklist rows for the firms in ``table`` (None if none)."""
    kinds = _list_kind(party, rng, firms, table)
    listed = np.flatnonzero(kinds >= 0)
    if listed.size == 0:
        return None
    frame = Frame(rng, listed.size)
    frame.add(key_column(), keys.take(pa.array(listed)))
    frame.cat("list_type", kinds[listed], LIST_TYPES[party], "why the firm is listed")
    days = rng.integers(0, 3 * 365, listed.size)
    dates = (np.datetime64("2026-06-30") - days.astype("timedelta64[D]")).astype("datetime64[D]")
    frame.add(Column("listed_date", "date", description="date the firm was listed"),
              pa.array(dates, type=pa.date32()))
    frame.cat("risk_level", (kinds[listed] == 2).astype(np.int64), RISK_LEVELS, "severity")
    return frame


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy().astype(float))


def _list_kind(party: str, rng: np.random.Generator, firms: Firms, table: pa.Table) -> np.ndarray:
    """-1 (not listed) or an index into LIST_TYPES[party] per firm, most severe wins."""
    fraud = firms.fraud & (rng.random(firms.n) < 0.7)
    if party == "gov":
        tiers = (_column(table, "abnormal_operation_listed") > 0,
                 _column(table, "dishonest_executor_count") > 0,
                 _column(table, "serious_violation_listed") > 0)
    elif party == "fin":
        tiers = (_column(table, "rejected_applications_90d") >= 8,
                 np.nan_to_num(_column(table, "max_overdue_days_ever")) >= 180, fraud)
    else:
        tiers = (_column(table, "real_name_verified") == 0,
                 _column(table, "collection_calls_6m") >= 20,
                 fraud & (_column(table, "number_change_12m") > 0))
    kind = np.full(firms.n, -1)
    for level, hit in enumerate(tiers):
        kind = np.where(hit, level, kind)
    return kind
