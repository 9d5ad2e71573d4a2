"""The C table kernels against plain Python references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc import _core


def _rows(values: list[int], width: int) -> np.ndarray:
    return np.array([v.to_bytes(width, "little") for v in values], dtype=f"S{width}").view(
        np.uint8).reshape(-1, width)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=60), st.lists(st.integers(0, 50), max_size=60),
       st.sampled_from([8, 10, 16]))
def test_match_equals_reference(a: list[int], b: list[int], width: int) -> None:
    got = _core.psi_match(_rows(a, width), _rows(b, width))
    want = [b.index(x) if x in b else -1 for x in a]
    assert got.tolist() == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=80))
def test_first_index_equals_reference(values: list[int]) -> None:
    got = _core.psi_first_index(_rows(values, 16))
    assert got.tolist() == [values.index(v) for v in values]


def test_cuckoo_places_every_item_in_one_of_its_bins() -> None:
    rng = np.random.default_rng(1)
    items = rng.integers(0, 256, size=(50_000, 16), dtype=np.uint8)
    nbins = int(1.27 * len(items))
    table, which, stash = _core.psi_cuckoo_insert(items, nbins)
    assert len(stash) == 0
    placed = np.flatnonzero(table >= 0)
    assert len(placed) == len(items)
    assert sorted(table[placed].tolist()) == list(range(len(items)))
    bins = _core.psi_cuckoo_bins(items, nbins)
    assert (bins[table[placed], which[placed]] == placed).all()


def test_match_rejects_narrow_rows() -> None:
    import pytest

    with pytest.raises(ValueError):
        _core.psi_match(np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.uint8))
