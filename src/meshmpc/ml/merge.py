"""Merging fine bins from their label counts: the bank's side of binning.

The bank holds, per feature, the bad and total count of each fine bin (its
own features in plaintext; a partner's from a ``grouped_sum`` revealed to the
bank only). It merges adjacent bins and hands each owner a *plan* (fine bin ->
final bin) with the final bins' WOE. Steps, on the value bins in order
(categories are first ordered by bad rate, as chi-merge does for nominal data):

1. empty bins are merged into a neighbour;
2. chi-merge (ChiMerge, Kerber 1992): while there are more than ``bins``
   bins, the adjacent pair with the smallest chi-square statistic is merged;
3. minimum bin size: while a bin holds fewer than ``min_rows`` rows it is
   merged into the neighbour whose bad rate is nearest (not for manual cuts:
   those are the owner's choice and are checked, not changed);
4. monotonic (optional, numeric): while the bad rate is not monotone in the
   direction of the overall trend, the first violating pair is merged.

The missing-value bin stays apart unless it is smaller than ``min_rows``; then
it joins the value bin with the nearest bad rate. Finally every non-empty bin
of more than one must hold at least ``min_rows`` rows, else the binning is
refused (:class:`BinningRefused`): an owner who learns the WOE of a small bin
learns the labels of its rows. A feature left with one bin gets WOE 0.

All loops run over bins (at most 255 per feature), never over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from meshmpc.ml.binning import CATEGORICAL
from meshmpc.ml.woe import BinningError, bad_rate, woe_iv


class BinningRefused(BinningError):
    """The bank refuses to release WOE (bins too small, or too many re-binnings)."""


@dataclass(frozen=True)
class MergeRules:
    """How the bank merges; ``min_rows`` is the absolute minimum rows per bin."""

    bins: int = 10
    min_rows: int = 50
    monotonic: bool = False
    smoothing: str = "toad"


@dataclass
class Plan:
    """One feature's merge result: fine bin -> final bin, and the final bins' stats."""

    mapping: np.ndarray
    bad: np.ndarray
    count: np.ndarray
    woe: np.ndarray
    iv: float
    missing_bin: int | None

    def to_message(self) -> dict[str, Any]:
        """What the owner receives (its own counts it knows; the WOE it learns)."""
        return {"map": self.mapping.tolist(), "woe": self.woe.tolist(),
                "count": self.count.tolist(), "iv": self.iv, "missing_bin": self.missing_bin}


Segments = list[list[int]]


def _sums(segments: Segments, values: np.ndarray) -> np.ndarray:
    return np.array([values[s].sum() for s in segments], dtype=np.float64)


def _merge_at(segments: Segments, i: int) -> None:
    """Merge segment i with segment i + 1."""
    segments[i] = segments[i] + segments.pop(i + 1)


def _drop_empty(segments: Segments, total: np.ndarray) -> None:
    while len(segments) > 1:
        sizes = _sums(segments, total)
        empty = np.flatnonzero(sizes == 0)
        if empty.size == 0:
            return
        i = int(empty[0])
        _merge_at(segments, i if i + 1 < len(segments) else i - 1)


def _chi2_adjacent(bad: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Chi-square of each adjacent pair's 2 x 2 table (bad/good by bin)."""
    good = total - bad
    a, b, c, d = bad[:-1], good[:-1], bad[1:], good[1:]
    n = a + b + c + d
    den = (a + b) * (c + d) * (a + c) * (b + d)
    num = n * (a * d - b * c) ** 2
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _chi_merge(segments: Segments, bad: np.ndarray, total: np.ndarray, bins: int) -> None:
    while len(segments) > bins:
        chi = _chi2_adjacent(_sums(segments, bad), _sums(segments, total))
        _merge_at(segments, int(np.argmin(chi)))


def _nearest_neighbour(rates: np.ndarray, i: int) -> int:
    """The index (i - 1 or i) of the pair to merge so bin i joins its nearest-rate neighbour."""
    if i == 0:
        return 0
    if i == len(rates) - 1:
        return i - 1
    return i - 1 if abs(rates[i] - rates[i - 1]) <= abs(rates[i] - rates[i + 1]) else i


def _min_size(segments: Segments, bad: np.ndarray, total: np.ndarray, min_rows: int) -> None:
    while len(segments) > 1:
        sizes = _sums(segments, total)
        i = int(np.argmin(sizes))
        if sizes[i] >= min_rows:
            return
        rates = bad_rate(_sums(segments, bad), sizes)
        _merge_at(segments, _nearest_neighbour(rates, i))


def _monotonic(segments: Segments, bad: np.ndarray, total: np.ndarray) -> None:
    while len(segments) > 2:
        rates = bad_rate(_sums(segments, bad), _sums(segments, total))
        steps = np.diff(rates)
        trend = np.sign(np.corrcoef(np.arange(len(rates)), rates)[0, 1]) \
            if np.ptp(rates) > 0 else 1.0
        wrong = np.flatnonzero(steps * trend < 0)
        if wrong.size == 0:
            return
        _merge_at(segments, int(wrong[0]))


def plan_feature(layout: dict[str, Any], bad: np.ndarray, total: np.ndarray,
                 rules: MergeRules) -> Plan:
    """Merge one feature's fine bins (``layout`` from :class:`FineFeature.layout`)."""
    n_fine = int(layout["n_bins"])
    bad, total = np.asarray(bad, dtype=np.float64), np.asarray(total, dtype=np.float64)
    has_missing = bool(layout["missing"])
    n_values = n_fine - has_missing
    order = list(range(n_values))
    if layout["kind"] == CATEGORICAL:
        rates = bad_rate(bad[:n_values], total[:n_values])
        order = [int(i) for i in np.argsort(rates, kind="stable")]
    segments: Segments = [[i] for i in order]
    _drop_empty(segments, total)
    if not layout["manual"]:
        _chi_merge(segments, bad, total, rules.bins)
        _min_size(segments, bad, total, rules.min_rows)
        if rules.monotonic and layout["kind"] != CATEGORICAL:
            _monotonic(segments, bad, total)
    if segments and _sums(segments, total).sum() == 0:
        segments = []  # only missing values: the missing bin is the feature's only bin
    missing_bin = _place_missing(segments, bad, total, has_missing, n_values, rules.min_rows)
    return _finish(segments, bad, total, n_fine, missing_bin, rules.smoothing)


def _place_missing(segments: Segments, bad: np.ndarray, total: np.ndarray, has_missing: bool,
                   slot: int, min_rows: int) -> int | None:
    """Index of the bin holding missing values (appending a bin of its own if needed)."""
    if not has_missing:
        return None
    if segments and total[slot] < min_rows:
        rates = bad_rate(_sums(segments, bad), _sums(segments, total))
        own = bad[slot] / total[slot] if total[slot] else 0.0
        target = int(np.argmin(np.abs(rates - own)))
        segments[target] = segments[target] + [slot]
        return target
    segments.append([slot])
    return len(segments) - 1


def _finish(segments: Segments, bad: np.ndarray, total: np.ndarray, n_fine: int,
            missing_bin: int | None, smoothing: str) -> Plan:
    mapping = np.zeros(n_fine, dtype=np.int64)
    for k, seg in enumerate(segments):
        mapping[seg] = k
    final_bad, final_total = _sums(segments, bad), _sums(segments, total)
    if len(segments) <= 1:
        woe, iv = np.zeros(len(segments)), 0.0
    else:
        result = woe_iv(final_bad, final_total - final_bad, smoothing)
        woe, iv = result.woe, result.iv
    return Plan(mapping, final_bad.astype(np.int64), final_total.astype(np.int64), woe, iv,
                missing_bin)


def check_plan(plan: Plan, min_rows: int) -> int | None:
    """The first bin with fewer than ``min_rows`` rows (None when releasable)."""
    if plan.count.size <= 1:
        return None
    small = np.flatnonzero((plan.count > 0) & (plan.count < min_rows))
    return int(small[0]) if small.size else None


def min_rows_for(n: int, min_share: float, min_count: int) -> int:
    """The bank's minimum rows per bin: max(ceil(share * n), count)."""
    return max(int(np.ceil(min_share * n)), int(min_count))
