"""WOE and IV equal toad's (stats.WOE / probability / IV) on the same bins, to 1e-9."""

import numpy as np
import pytest

from meshmpc.ml.woe import BinningError, woe_iv

toad_stats = pytest.importorskip("toad.stats")


def _toad(bins: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    woe = np.array([toad_stats.WOE(*toad_stats.probability(y, mask=bins == v))
                    for v in np.unique(bins)])
    return woe, float(toad_stats.IV(bins, y))


def _counts(bins: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.unique(bins)
    bad = np.array([y[bins == v].sum() for v in values])
    total = np.array([(bins == v).sum() for v in values])
    return bad, total - bad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_woe_iv_equal_toad(seed):
    rng = np.random.default_rng(seed)
    bins = rng.integers(0, 8, 3000)
    y = (rng.random(3000) < 0.05 + 0.04 * bins).astype(int)
    ours = woe_iv(*_counts(bins, y))
    woe, iv = _toad(bins, y)
    assert np.allclose(ours.woe, woe, rtol=0, atol=1e-9)
    assert abs(ours.iv - iv) < 1e-9
    assert ours.woe[-1] > ours.woe[0]  # riskier bins have positive WOE (not optbinning's sign)


def test_single_class_bins_smoothed_like_toad():
    bins = np.array([0] * 50 + [1] * 50 + [2] * 100)
    y = np.array([1] * 50 + [0] * 50 + [0, 1] * 50)  # bin 0 all bad, bin 1 all good
    ours = woe_iv(*_counts(bins, y))
    woe, iv = _toad(bins, y)
    assert np.all(np.isfinite(ours.woe))
    assert np.allclose(ours.woe, woe, atol=1e-9) and abs(ours.iv - iv) < 1e-9
    half = woe_iv(*_counts(bins, y), smoothing="half")
    assert half.woe[0] != ours.woe[0]


def test_bad_counts_rejected():
    with pytest.raises(BinningError, match="negative"):
        woe_iv(np.array([-1, 2]), np.array([3, 4]))
    with pytest.raises(BinningError, match="smoothing"):
        woe_iv(np.array([1, 2]), np.array([3, 4]), smoothing="laplace")
