"""The bank's monthly monitoring on its own loans: grades, alerts, decisions, drift.

Inputs are the bank's view after the receiver-only feeds: the joint behaviour
score of every loan and month (NaN where some partner does not hold the loan)
and the flags each partner reported. All of it is vectorised over the
(loans, months) grid.

Alerts of month m (m >= 2, against month m-1): ``grade_drop`` (two grades or
more), ``score_drop`` (more than ``score_drop`` points), ``new_list_hit``.
Decision per loan and month: ``freeze`` (further drawdowns) on a new list hit,
or a grade drop with a behaviour flag; ``reduce`` (limit) on any other alert;
``keep`` otherwise. Population stability PSI = sum (a - e) ln(a / e) over the
expected month's deciles (empty bins take share 1e-4, as in toad's
``stats.PSI`` guard), drift alerts at 0.1 (investigate) and 0.25 (significant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meshmpc_credit.inloan.signals import FLAG_NEW_LIST_HIT

GRADES = ("A", "B", "C", "D", "E")
CUTOFFS = (580.0, 555.0, 530.0, 500.0)
"""Lower score bound of grades A, B, C, D; below the last is E."""
DECISIONS = ("keep", "reduce", "freeze")
PSI_WARN, PSI_ALERT = 0.1, 0.25
PSI_FLOOR = 1e-4


@dataclass
class MonitorParams:
    """Public thresholds of the monitoring strategy."""

    cutoffs: tuple[float, ...] = CUTOFFS
    score_drop: float = 40.0
    grade_drop: int = 2
    psi_bins: int = 10


def grades(score: npt.NDArray[np.float64], cutoffs: tuple[float, ...]) -> npt.NDArray[np.int8]:
    """Grade index 0 (A) .. len(cutoffs) (E); -1 where the score is NaN."""
    if any(a <= b for a, b in zip(cutoffs, cutoffs[1:], strict=False)):
        raise ValueError(f"grade cut-offs must decrease strictly, got {list(cutoffs)}")
    bounds = -np.asarray(cutoffs, dtype=np.float64)
    index = np.searchsorted(bounds, -np.nan_to_num(score, nan=0.0), side="right")
    return np.where(np.isnan(score), -1, index).astype(np.int8)


def alerts(score: npt.NDArray[np.float64], flags: npt.NDArray[np.uint8],
           params: MonitorParams) -> dict[str, npt.NDArray[np.bool_]]:
    """Boolean loans x months grids of each alert (month 1 has none)."""
    grade = grades(score, params.cutoffs).astype(np.int16)
    known = grade >= 0
    prev_known = np.concatenate([known[:, :1] & False, known[:, :-1]], axis=1)
    prev_grade = np.concatenate([grade[:, :1], grade[:, :-1]], axis=1)
    prev_score = np.concatenate([score[:, :1], score[:, :-1]], axis=1)
    both = known & prev_known
    prev_flags = np.concatenate([np.zeros_like(flags[:, :1]), flags[:, :-1]], axis=1)
    listed = (flags & FLAG_NEW_LIST_HIT) > 0
    return {
        "grade_drop": both & (grade - prev_grade >= params.grade_drop),
        "score_drop": both & (prev_score - np.nan_to_num(score, nan=np.inf) > params.score_drop),
        "new_list_hit": listed & ((prev_flags & FLAG_NEW_LIST_HIT) == 0),
    }


def decisions(raised: dict[str, npt.NDArray[np.bool_]],
              flags: npt.NDArray[np.uint8]) -> npt.NDArray[np.int8]:
    """0 keep, 1 reduce limit, 2 freeze drawdowns, per loan and month."""
    behaviour = (flags & ~np.uint8(FLAG_NEW_LIST_HIT)) > 0
    freeze = raised["new_list_hit"] | (raised["grade_drop"] & behaviour)
    reduce = raised["grade_drop"] | raised["score_drop"]
    return np.where(freeze, 2, np.where(reduce, 1, 0)).astype(np.int8)


def psi(expected: npt.NDArray[np.float64], actual: npt.NDArray[np.float64],
        bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` on the expected's quantile bins (NaN dropped)."""
    expected = expected[~np.isnan(expected)]
    actual = actual[~np.isnan(actual)]
    if expected.size == 0 or actual.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=edges.size + 1)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=edges.size + 1)
    e_share = np.maximum(e / expected.size, PSI_FLOOR)
    a_share = np.maximum(a / actual.size, PSI_FLOOR)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def psi_by_month(values: npt.NDArray[np.float64], bins: int = 10) -> list[float]:
    """Month-over-month PSI of a loans x months grid (month 1 against itself: 0)."""
    out = [0.0]
    for m in range(1, values.shape[1]):
        out.append(psi(values[:, m - 1], values[:, m], bins))
    return out


def drift_level(value: float) -> str:
    """"stable", "investigate" (>= 0.1) or "significant" (>= 0.25)."""
    return "significant" if value >= PSI_ALERT else "investigate" if value >= PSI_WARN \
        else "stable"


def alert_table(keys: pa.Array, score: npt.NDArray[np.float64], flags: npt.NDArray[np.uint8],
                params: MonitorParams) -> pa.Table:
    """One row per loan and month with an alert: key, month, score, grades, alerts, decision."""
    raised = alerts(score, flags, params)
    decided = decisions(raised, flags)
    any_alert = np.zeros(score.shape, bool)
    for grid in raised.values():
        any_alert |= grid
    rows, cols = np.nonzero(any_alert)
    grade = grades(score, params.cutoffs)
    prev = np.concatenate([grade[:, :1], grade[:, :-1]], axis=1)
    letters = np.array([*GRADES, "?"])
    return pa.table({
        "credit_code": keys.take(pa.array(rows)),
        "month": pa.array(cols + 1, pa.int32()),
        "score": score[rows, cols],
        "previous_score": np.concatenate([score[:, :1], score[:, :-1]], axis=1)[rows, cols],
        "grade": letters[grade[rows, cols]],
        "previous_grade": letters[prev[rows, cols]],
        **{name: grid[rows, cols] for name, grid in raised.items()},
        "flags": flags[rows, cols],
        "decision": np.array(DECISIONS)[decided[rows, cols]],
    })
