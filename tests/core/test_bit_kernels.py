"""Transpose, GF(2^128) and block-helper kernels against plain numpy / Python."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc.crypto.aes import available_paths
from meshmpc.crypto.bits import (
    gf128_inner,
    gf128_mul,
    pack_bits,
    select_rows,
    transpose,
    unpack_bits,
    xor_where,
)
from meshmpc.crypto.errors import KernelInputError

PATHS = available_paths()
POLY = (1 << 128) | 0x87


def gf_mul_reference(a: int, b: int) -> int:
    acc = 0
    for i in range(128):
        if (b >> i) & 1:
            acc ^= a << i
    for bit in range(254, 127, -1):
        if (acc >> bit) & 1:
            acc ^= POLY << (bit - 128)
    return acc


def to_int(block: np.ndarray) -> int:
    return int.from_bytes(block.tobytes(), "little")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("rows", "cols"), [(8, 8), (32, 128), (64, 2048), (128, 1 << 12), (136, 1032), (512, 384)]
)
def test_transpose_matches_numpy(path: int, rows: int, cols: int) -> None:
    bits = np.random.default_rng(rows * cols).integers(0, 2, (rows, cols), dtype=np.uint8)
    out = transpose(pack_bits(bits), rows, cols, path=path)
    assert np.array_equal(out, pack_bits(bits.T))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.randoms(use_true_random=False))
def test_transpose_twice_is_identity(r8: int, c8: int, rnd) -> None:
    rows, cols = 8 * r8, 8 * c8
    data = np.frombuffer(rnd.randbytes(rows * cols // 8), dtype=np.uint8).reshape(rows, -1)
    back = transpose(transpose(data, rows, cols), cols, rows)
    assert np.array_equal(back, data)


def test_transpose_rejects_bad_shapes() -> None:
    with pytest.raises(KernelInputError, match="multiples of 8"):
        transpose(np.zeros(12, np.uint8), 12, 8)
    with pytest.raises(KernelInputError, match="bytes"):
        transpose(np.zeros(7, np.uint8), 8, 8)


@pytest.mark.parametrize("path", PATHS)
def test_gf128_mul_matches_reference(path: int) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 256, (50, 16), np.uint8), rng.integers(0, 256, (50, 16), np.uint8)
    a[0] = 0xFF  # all-ones operands exercise every reduction step
    b[0] = 0xFF
    got = gf128_mul(a, b, path=path)
    for i in range(50):
        assert to_int(got[i]) == gf_mul_reference(to_int(a[i]), to_int(b[i]))


@pytest.mark.parametrize("path", PATHS)
def test_gf128_inner_is_sum_of_products(path: int) -> None:
    rng = np.random.default_rng(6)
    a, b = rng.integers(0, 256, (300, 16), np.uint8), rng.integers(0, 256, (300, 16), np.uint8)
    expected = np.bitwise_xor.reduce(gf128_mul(a, b, path=0), axis=0)
    assert gf128_inner(a, b, path=path) == expected.tobytes()


def test_gf128_one_is_identity() -> None:
    a = np.random.default_rng(7).integers(0, 256, (9, 16), np.uint8)
    one = np.zeros((9, 16), np.uint8)
    one[:, 0] = 1
    assert np.array_equal(gf128_mul(a, one), a)


def test_select_rows_and_xor_where() -> None:
    rng = np.random.default_rng(8)
    n = 203
    choice = rng.integers(0, 2, n, dtype=np.uint8)
    a, b = rng.integers(0, 256, (n, 16), np.uint8), rng.integers(0, 256, (n, 16), np.uint8)
    expected = np.where(choice[:, None] == 1, b, a)
    assert np.array_equal(select_rows(pack_bits(choice), a, b), expected)
    delta = rng.integers(0, 256, 16, np.uint8)
    rows = a.copy()
    xor_where(pack_bits(choice), delta, rows)
    assert np.array_equal(rows, a ^ (choice[:, None] * delta))
    assert np.array_equal(unpack_bits(pack_bits(choice), n), choice)


def test_raw_xor_and_bindings() -> None:
    from meshmpc import _core

    rng = np.random.default_rng(9)
    a, b = rng.integers(0, 256, 1001, np.uint8), rng.integers(0, 256, 1001, np.uint8)
    out = np.empty_like(a)
    _core.xor_into(a, b, out)
    assert np.array_equal(out, a ^ b)
    _core.and_into(a, b, out)
    assert np.array_equal(out, a & b)
    with pytest.raises(ValueError, match="contiguous"):
        _core.xor_into(a[::2], b[::2], out)
