"""The Montgomery kernels of csrc/he_mont.c against gmpy2, at the real operand sizes.

tests/crypto/test_he.py runs the schemes on small test keys; here every kernel
that moved to OpenSSL's Montgomery arithmetic is checked on 2048- and 4096-bit
odd moduli (where the constant-time power path is taken) against plain
gmpy2 arithmetic, including the edge cases a Montgomery form gets wrong first:
zero exponents, empty bins, operands not below the modulus, even moduli.
"""

from __future__ import annotations

import os

import gmpy2
import numpy as np
import pytest

from meshmpc import _core
from meshmpc.crypto.he import generate
from meshmpc.crypto.he._limbs import int_to_limbs, ints_to_limbs, limbs_to_ints
from meshmpc.crypto.he.base import CONSTANT_TIME_ENV, CONSTANT_TIME_WINDOW, randomizer_bits_for


def odd_modulus(bits: int) -> int:
    return int.from_bytes(os.urandom(bits // 8), "little") | (1 << (bits - 1)) | 1


def randoms(count: int, below: int) -> list[int]:
    nbytes = (below.bit_length() + 7) // 8 + 8
    return [int.from_bytes(os.urandom(nbytes), "little") % below for _ in range(count)]


@pytest.mark.parametrize("bits", [2048, 4096])
def test_powmod_long_and_short_exponents_match_gmpy2(bits: int) -> None:
    m = odd_modulus(bits)
    L = bits // 64
    a = randoms(6, m) + [0, 1]
    long_e = randoms(8, 1 << 1024)
    long_e[0] = 0
    for e in (long_e, randoms(8, 1 << 40)):
        width = 16 if max(e).bit_length() > 64 else 1
        got = _core.he_powmod(ints_to_limbs(a, L), ints_to_limbs(e, width), int_to_limbs(m), L)
        assert limbs_to_ints(got) == [int(gmpy2.powmod(x, y, m)) for x, y in zip(a, e, strict=True)]


def test_powmod_even_modulus_falls_back_to_gmp() -> None:
    m = odd_modulus(2048) + 1
    a, e = randoms(3, m), randoms(3, 1 << 600)
    got = _core.he_powmod(ints_to_limbs(a, 32), ints_to_limbs(e, 10), int_to_limbs(m), 32)
    assert limbs_to_ints(got) == [int(gmpy2.powmod(x, y, m)) for x, y in zip(a, e, strict=True)]


@pytest.mark.parametrize("w", [3, 8])
def test_fixed_base_table_powers_match_gmpy2(w: int) -> None:
    m = odd_modulus(2048)
    base = randoms(1, m)[0]
    bits = 448
    nwin = -(-bits // w)
    table = _core.he_fb_table(int_to_limbs(base, 32), w, nwin, int_to_limbs(m), 2)
    e = randoms(20, 1 << bits) + [0, (1 << bits) - 1, 1]
    got = _core.he_fb_pow(table, ints_to_limbs(e, 7), int_to_limbs(m), 32, 2)
    assert limbs_to_ints(got) == [int(gmpy2.powmod(base, x, m)) for x in e]


@pytest.mark.parametrize(("bits", "w"), [(2048, 1), (2048, 6), (4096, 5)])
def test_constant_time_fixed_base_powers_match_gmpy2(bits: int, w: int) -> None:
    m = odd_modulus(bits)
    L = bits // 64
    base = randoms(1, m)[0]
    nwin = -(-448 // w)
    table = _core.he_fb_table(int_to_limbs(base, L), w, nwin, int_to_limbs(m), 2)
    e = randoms(20, 1 << 448) + [0, (1 << 448) - 1, 1, 1 << 447]
    exps = ints_to_limbs(e, 7)
    got = _core.he_fb_pow(table, exps, int_to_limbs(m), L, 2, True)
    assert limbs_to_ints(got) == [int(gmpy2.powmod(base, x, m)) for x in e]
    assert np.array_equal(got, _core.he_fb_pow(table, exps, int_to_limbs(m), L, 2))
    empty = _core.he_fb_pow(table, np.zeros((0, 7), np.uint64), int_to_limbs(m), L, 2, True)
    assert empty.shape == (0, L)


def test_constant_time_power_refuses_moduli_wider_than_its_buffer() -> None:
    m = odd_modulus(8256)  # 129 limbs
    table = _core.he_fb_table(int_to_limbs(3, 129), 2, 1, int_to_limbs(m), 1)
    with pytest.raises(ValueError, match="fit"):
        _core.he_fb_pow(table, ints_to_limbs([3], 1), int_to_limbs(m), 129, 1, True)


@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_constant_time_keys_round_trip(scheme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONSTANT_TIME_ENV, "1")
    sk = generate(scheme, 2048, threads=2)
    pk = sk.public
    vals = randoms(30, 1 << 100)
    a, b = sk.encrypt(ints_to_limbs(vals, 2)), pk.encrypt(ints_to_limbs(vals, 2))
    assert limbs_to_ints(sk.decrypt(a)) == vals
    assert limbs_to_ints(sk.decrypt(pk.add(a, b))) == [2 * v for v in vals]
    own = getattr(sk, "_tables", None) or []
    tables = [pk._rand_table, *own, getattr(pk, "_g_table", None)]
    built = [t for t in tables if t is not None]
    assert built and all(t.constant_time and t.table.shape[1] <= 1 << CONSTANT_TIME_WINDOW
                         for t in built)


def test_fixed_base_table_needs_an_odd_modulus() -> None:
    with pytest.raises(ValueError, match="odd"):
        _core.he_fb_table(int_to_limbs(3, 32), 4, 2, int_to_limbs(odd_modulus(2048) + 1))


def test_horner_packs_like_the_formula() -> None:
    m = odd_modulus(2048)
    k, shift = 5, 83
    c = randoms(3 * k, m)
    got = limbs_to_ints(_core.he_horner(ints_to_limbs(c, 32), k, shift, int_to_limbs(m), 32, 2))
    for i, v in enumerate(got):
        want = 1
        for j in range(k):
            want = want * int(gmpy2.powmod(c[i * k + j], 1 << (shift * j), m)) % m
        assert v == want


def test_histogram_products_with_empty_bins_and_unreduced_inputs() -> None:
    m = odd_modulus(2048)
    n = 300
    rng = np.random.default_rng(3)
    c = randoms(n, m)
    c[7] = m + 5  # not below m (fits the limbs): must be reduced, not trusted
    bins = rng.integers(0, 5, (3, n)).astype(np.uint8)  # bins 5..7 stay empty
    rows = np.sort(rng.choice(n, 200, replace=False)).astype(np.int64)
    rows[0] = 7
    rows.sort()
    sums, filled = _core.he_hist(ints_to_limbs(c, 32), rows, bins, 8, int_to_limbs(m), 2)
    got = np.array(limbs_to_ints(sums.reshape(-1, 32)), dtype=object).reshape(3, 8)
    for f in range(3):
        for b in range(8):
            want = 1
            for r in rows[bins[f, rows] == b]:
                want = want * c[int(r)] % m
            assert got[f, b] == want
            assert filled[f, b] == (b < 5 and bool(np.any(bins[f, rows] == b)))


def test_randomizer_bits_follow_the_security_level() -> None:
    assert randomizer_bits_for(2048) == 448
    assert randomizer_bits_for(3072) == 512
    assert randomizer_bits_for(1024) == 512  # test-sized keys keep DJN's k/2


@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_2048_bit_keys_round_trip_with_short_randomisers(scheme: str) -> None:
    sk = generate(scheme, 2048, threads=2)
    pk = sk.public
    assert pk.randomizer_bits == 448
    vals = randoms(50, 1 << 100)
    a, b = sk.encrypt(ints_to_limbs(vals, 2)), pk.encrypt(ints_to_limbs(vals, 2))
    assert limbs_to_ints(sk.decrypt(a)) == vals
    assert limbs_to_ints(sk.decrypt(pk.add(a, b))) == [2 * v for v in vals]
    assert limbs_to_ints(sk.decrypt(pk.rerandomize(a))) == vals
    assert not np.array_equal(pk.rerandomize(a).data, a.data)


def test_histogram_limits_skip_only_the_unread_bins() -> None:
    m = odd_modulus(2048)
    n = 120
    rng = np.random.default_rng(4)
    c = ints_to_limbs(randoms(n, m), 32)
    bins = rng.integers(0, 6, (4, n)).astype(np.uint8)
    rows = np.arange(n, dtype=np.int64)
    limits = np.array([6, 3, 0, 1], dtype=np.uint8)
    full, full_filled = _core.he_hist(c, rows, bins, 6, int_to_limbs(m), 2)
    part, filled = _core.he_hist(c, rows, bins, 6, int_to_limbs(m), 2, limits)
    one = int_to_limbs(1, 32)
    for f in range(4):
        for b in range(6):
            if b < limits[f]:
                assert np.array_equal(part[f, b], full[f, b])
                assert filled[f, b] == full_filled[f, b]
            else:
                assert np.array_equal(part[f, b], one) and filled[f, b] == 0
    with pytest.raises(ValueError, match="limits"):
        _core.he_hist(c, rows, bins, 6, int_to_limbs(m), 1, limits[:3])
