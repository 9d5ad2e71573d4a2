"""The PIR C kernels: every SIMD path equals the big-integer reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc import _core

PATHS = [p for p in (0, 1, 2) if p <= _core.pir_best_path()]


def reference(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """<L_i, R_j> mod 2^32 with Python integers (no overflow)."""
    prod = left.astype(object) @ right.astype(object).T
    return (prod % (1 << 32)).astype(np.uint32)


@pytest.mark.parametrize("path", PATHS)
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), k=st.integers(0, 2200),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=15, deadline=None)
def test_dot_u8_matches_reference(path: int, rows: int, cols: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    left = rng.integers(0, 256, (rows, k), dtype=np.uint8)
    right = rng.integers(0, 2**32, (cols, k), dtype=np.uint32)
    out = np.empty((rows, cols), np.uint32)
    assert _core.pir_dot_u8_into(left, right, out, 2, path) == path
    assert (out == reference(left, right)).all()


@pytest.mark.parametrize("path", PATHS)
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), k=st.integers(0, 300),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=15, deadline=None)
def test_dot_u32_transposed_output(path: int, rows: int, cols: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    left = rng.integers(0, 2**32, (rows, k), dtype=np.uint32)
    right = rng.integers(0, 2**32, (cols, k), dtype=np.uint32)
    out = np.empty((cols, rows), np.uint32)
    _core.pir_dot_u32_into(left, right, out.T, 2, path)
    assert (reference(left, right) == out.T).all()


def test_all_paths_agree_on_a_large_block() -> None:
    rng = np.random.default_rng(7)
    left = rng.integers(0, 256, (301, 5000), dtype=np.uint8)
    right = rng.integers(0, 2**32, (66, 5000), dtype=np.uint32)
    results = []
    for path in PATHS:
        out = np.empty((301, 66), np.uint32)
        _core.pir_dot_u8_into(left, right, out, 2, path)
        results.append(out)
    for other in results[1:]:
        assert (other == results[0]).all()


def test_dot_rejects_bad_shapes() -> None:
    left = np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match="columns"):
        _core.pir_dot_u8_into(left, np.zeros((2, 5), np.uint32), np.empty((3, 2), np.uint32))
    with pytest.raises(ValueError, match="out must be"):
        _core.pir_dot_u8_into(left, np.zeros((2, 4), np.uint32), np.empty((2, 3), np.uint32))


def test_cuckoo_places_every_item_in_one_of_its_bins() -> None:
    rng = np.random.default_rng(3)
    n, bins, cap = 3000, 800, 4  # load 0.94
    c1 = rng.integers(0, bins, n, dtype=np.uint32)
    c2 = rng.integers(0, bins, n, dtype=np.uint32)
    table, failed = _core.pir_cuckoo_place(c1, c2, bins, cap)
    assert failed == -1
    where = np.flatnonzero(table >= 0)
    items = table[where]
    assert sorted(items.tolist()) == list(range(n))
    home = where // cap
    assert ((home == c1[items]) | (home == c2[items])).all()


def test_cuckoo_reports_an_impossible_placement() -> None:
    c = np.zeros(5, np.uint32)
    _, failed = _core.pir_cuckoo_place(c, c, 2, 2, 50)
    assert failed >= 0


def test_gauss_table_lookup_counts_entries() -> None:
    cdf = np.full(256, np.iinfo(np.uint64).max, dtype=np.uint64)
    cdf[:4] = [10, 20, 30, 40]
    u = np.array([0, 9, 10, 25, 40, 2**63], dtype=np.uint64)
    out = np.zeros(6, np.uint32)
    ambiguous = np.full(65536, _core.PIR_GAUSS_AMBIGUOUS, np.int8)
    _core.pir_gauss_add_into(u, cdf, ambiguous, 2, out)  # binary-search path only
    assert out.view(np.int32).tolist() == [-2, -2, -1, 0, 2, 2]


def test_gauss_lookup_table_agrees_with_binary_search() -> None:
    from meshmpc.pir import lwe

    u = np.random.default_rng(9).integers(0, 2**64, 300_000, dtype=np.uint64)
    u[:100] = lwe.gaussian_cdf()[:100]  # exactly on boundaries
    fast, slow = np.zeros(len(u), np.uint32), np.zeros(len(u), np.uint32)
    _core.pir_gauss_add_into(u, lwe.gaussian_cdf(), lwe.gaussian_lut(), lwe.TAIL, fast)
    ambiguous = np.full(65536, _core.PIR_GAUSS_AMBIGUOUS, np.int8)
    _core.pir_gauss_add_into(u, lwe.gaussian_cdf(), ambiguous, lwe.TAIL, slow)
    assert (fast == slow).all()
    assert (lwe.gaussian_lut() == _core.PIR_GAUSS_AMBIGUOUS).mean() < 0.01
