"""Ring kernels: bit slicing and Z_2^128 arithmetic against Python integers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc.mpc.circuits import bitslice, unslice_plane
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.ring import RING64, RING128, ring_for

M128 = 2**128


def to_ints(a: np.ndarray) -> list[int]:
    flat = a.reshape(-1, 2)
    return [int(lo) | (int(hi) << 64) for lo, hi in flat]


@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=200))
@settings(max_examples=30, deadline=None)
def test_bitslice_planes_hold_every_bit(values: list[int]) -> None:
    x = np.array(values, dtype=np.uint64)
    planes = bitslice(x)
    for j in (0, 1, 31, 62, 63):
        assert unslice_plane(planes[j], x.size).tolist() == [(v >> j) & 1 for v in values]


ints128 = st.integers(-(2**127), 2**127 - 1)


@given(st.lists(st.tuples(ints128, ints128), min_size=1, max_size=50))
@settings(max_examples=30, deadline=None)
def test_ring128_arithmetic_matches_python(pairs: list[tuple[int, int]]) -> None:
    a = RING128.from_int(np.array([p[0] for p in pairs], dtype=object))
    b = RING128.from_int(np.array([p[1] for p in pairs], dtype=object))
    assert to_ints(RING128.add(a, b)) == [(x + y) % M128 for x, y in pairs]
    assert to_ints(RING128.sub(a, b)) == [(x - y) % M128 for x, y in pairs]
    assert to_ints(RING128.mul(a, b)) == [(x * y) % M128 for x, y in pairs]
    assert to_ints(RING128.sar(a, 7)) == [(x >> 7) % M128 for x, _ in pairs]
    assert to_ints(RING128.shr(a, 100)) == [(x % M128) >> 100 for x, _ in pairs]


def test_ring128_matmul_and_sum_match_python() -> None:
    rng = np.random.default_rng(3)
    a_int = rng.integers(-(2**62), 2**62, size=(4, 5)).astype(object) * 2**40
    b_int = rng.integers(-(2**62), 2**62, size=(5, 3)).astype(object)
    a, b = RING128.from_int(a_int), RING128.from_int(b_int)
    expected = (a_int.dot(b_int)) % M128
    assert to_ints(RING128.matmul(a, b)) == [int(v) for v in expected.reshape(-1)]
    assert to_ints(RING128.sum(a, axis=0)) == [int(v) % M128 for v in a_int.sum(axis=0)]
    assert to_ints(RING128.sum(a)) == [int(a_int.sum()) % M128]


def test_fixed_point_round_trip_both_rings() -> None:
    x = np.array([0.0, -1.5, 2.25, 1e6, -1e-3, 32767.99])
    assert np.allclose(RING64.decode(RING64.encode(x, 16), 16), x, atol=2**-16)
    assert np.allclose(RING128.decode(RING128.encode(x, 40), 40), x, atol=2**-40)


def test_encoding_out_of_range_raises() -> None:
    with pytest.raises(MpcError, match="too large"):
        RING64.encode(np.array([2.0**50]), 16)
    with pytest.raises(MpcError, match="unsupported ring"):
        ring_for(32)


@pytest.mark.parametrize("k,m,p", [(1, 1, 1), (37, 5, 1), (200, 100, 3), (0, 4, 2)])
def test_ring64_transposed_matmul_kernel_matches_numpy(k: int, m: int, p: int) -> None:
    rng = np.random.default_rng(k + m + p)
    a = rng.integers(0, 2**64, size=(k, m), dtype=np.uint64)
    b = rng.integers(0, 2**64, size=(k, p), dtype=np.uint64)
    expected = np.matmul(np.ascontiguousarray(a.T), b, dtype=np.uint64)
    assert np.array_equal(RING64.matmul(a.T, b), expected)  # the C path (a.T is a view)
