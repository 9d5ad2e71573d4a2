"""meshmpc.crypto.he: known answers, homomorphic properties, packing, wrong keys."""

from __future__ import annotations

import functools

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc import _core
from meshmpc.crypto.he import (
    PackingOverflowError,
    PaillierSecretKey,
    PlaintextRangeError,
    WrongKeyError,
    generate,
)
from meshmpc.crypto.he._limbs import int_to_limbs, ints_to_limbs, limbs_to_ints
from meshmpc.crypto.he.ou import OUSecretKey
from meshmpc.crypto.he.packing import GHPacking

# Fixed primes for known-answer vectors (512-bit n: for tests only).
P = gmpy2.next_prime(gmpy2.mpz(2) ** 255 + 12345)
Q = gmpy2.next_prime(gmpy2.mpz(2) ** 255 + 987654321)


SCHEMES = ["paillier", "paillier-subgroup", "ou"]
"""The schemes and key shapes every property test runs on (the subgroup shape opt-in)."""


@functools.cache
def key(scheme: str, bits: int = 1024):
    if scheme == "paillier-subgroup":
        return generate("paillier", bits, key_shape="subgroup", allow_insecure=True)
    return generate(scheme, bits, allow_insecure=True)


def test_paillier_known_answer_decrypts_definition() -> None:
    n, n2 = P * Q, (P * Q) ** 2
    x = gmpy2.mpz(7)
    hs = gmpy2.powmod((-(x * x)) % n, n, n2)
    sk = PaillierSecretKey(P, Q, hs, threads=1)
    m, r = 123456789123456789, gmpy2.mpz(2) ** 200 + 3
    c = (1 + m * n) * gmpy2.powmod(hs, r, n2) % n2  # DJN: (1+n)^m h_s^r
    got = sk.decrypt(sk.public.wrap(int_to_limbs(c, sk.public.ct_limbs).reshape(1, -1)))
    assert limbs_to_ints(got) == [m]


def test_ou_known_answer_decrypts_definition() -> None:
    p, q = gmpy2.next_prime(gmpy2.mpz(2) ** 170 + 5), gmpy2.next_prime(gmpy2.mpz(2) ** 171 + 9)
    n = p * p * q
    g = gmpy2.mpz(2)
    sk = OUSecretKey(p, q, g, threads=1)
    h = gmpy2.powmod(g, n, n)
    m, r = 98765432123456789, gmpy2.mpz(3) ** 90
    c = gmpy2.powmod(g, m, n) * gmpy2.powmod(h, r, n) % n
    got = sk.decrypt(sk.public.wrap(int_to_limbs(c, sk.public.ct_limbs).reshape(1, -1)))
    assert limbs_to_ints(got) == [m]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_round_trip_public_and_secret_encryption(scheme: str) -> None:
    sk = key(scheme)
    vals = [0, 1, 2**64 + 5, 2 ** (sk.public.plain_bits - 1) + 17]
    pl = ints_to_limbs(vals, 16)
    assert limbs_to_ints(sk.decrypt(sk.encrypt(pl))) == vals
    assert limbs_to_ints(sk.decrypt(sk.public.encrypt(pl))) == vals
    # Same plaintext, different ciphertexts (randomised).
    a, b = sk.encrypt(pl[:1]), sk.encrypt(pl[:1])
    assert not np.array_equal(a.data, b.data)


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=15, deadline=None)
@given(a=st.lists(st.integers(0, 2**120), min_size=1, max_size=6), k=st.integers(0, 2**60))
def test_homomorphic_add_sub_mul(scheme: str, a: list[int], k: int) -> None:
    sk = key(scheme)
    pk = sk.public
    mod = sk.plain_modulus if scheme == "ou" else int(pk.n)
    b = list(reversed(a))
    ca, cb = sk.encrypt(ints_to_limbs(a, 2)), sk.encrypt(ints_to_limbs(b, 2))
    assert limbs_to_ints(sk.decrypt(pk.add(ca, cb))) == [x + y for x, y in zip(a, b, strict=True)]
    diff = [(x - y) % mod for x, y in zip(a, b, strict=True)]
    assert limbs_to_ints(sk.decrypt(pk.sub(ca, cb))) == diff
    got = sk.decrypt(pk.mul_plain(ca, int_to_limbs(k, 1)))
    assert limbs_to_ints(got) == [x * k % mod for x in a]
    assert limbs_to_ints(sk.decrypt(pk.rerandomize(ca))) == a


def test_histogram_kernel_matches_plain_sums() -> None:
    sk = key("ou")
    pk = sk.public
    rng = np.random.default_rng(5)
    vals = rng.integers(0, 1000, 300)
    bins = rng.integers(0, 6, (4, 300)).astype(np.uint8)
    rows = np.sort(rng.choice(300, 200, replace=False))
    c = sk.encrypt(ints_to_limbs(vals.tolist(), 1))
    sums, filled = pk.histogram(c, rows, bins, 8)
    got = np.array(limbs_to_ints(sk.decrypt(sums))).reshape(4, 8)
    for f in range(4):
        want = np.bincount(bins[f, rows], vals[rows], 8)
        assert np.array_equal(got[f], want)
        assert np.array_equal(filled[f].astype(bool), np.bincount(bins[f, rows], minlength=8) > 0)
    with pytest.raises(ValueError, match="bin index"):
        pk.histogram(c, rows, bins, 3)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_packing_sums_and_decodes(scheme: str) -> None:
    sk = key(scheme)
    pk = sk.public
    mod = sk.plain_modulus if scheme == "ou" else int(pk.n)
    rng = np.random.default_rng(2)
    g, h = rng.uniform(-1, 1, 40), rng.uniform(0, 0.25, 40)
    pack = GHPacking(24, 1.0, 0.25, 40, pk.plain_bits)
    c = sk.encrypt(pack.encode(g, h, mod))
    s = pk.add(c[:20], c[20:])
    G, H = pack.decode(sk.decrypt(pk.pack(s, pack.per_plaintext, pack.slot_bits)), mod, 20)
    assert np.allclose(G, g[:20] + g[20:], atol=2**-22)
    assert np.allclose(H, h[:20] + h[20:], atol=2**-22)


def test_packing_overflow_is_detected() -> None:
    pack = GHPacking(24, 1.0, 0.25, 1000, 680)
    with pytest.raises(PackingOverflowError):
        pack.encode(np.array([1.5]), np.array([0.1]), 2**600 + 1)
    with pytest.raises(PackingOverflowError):
        pack.encode(np.array([0.5]), np.array([-0.1]), 2**600 + 1)
    with pytest.raises(PackingOverflowError):
        GHPacking(60, 1.0, 0.25, 2**30, 680).per_plaintext  # noqa: B018


def test_wrong_key_and_range_errors() -> None:
    a, b = key("ou"), generate("ou", 1024, allow_insecure=True)
    ca, cb = a.encrypt(ints_to_limbs([1], 1)), b.encrypt(ints_to_limbs([2], 1))
    with pytest.raises(WrongKeyError):
        a.public.add(ca, cb)
    with pytest.raises(WrongKeyError):
        b.decrypt(ca)
    with pytest.raises(PlaintextRangeError):
        a.public.encrypt(int_to_limbs(2 ** (a.public.plain_bits + 3), 8).reshape(1, -1))
    with pytest.raises(ValueError, match="modulus"):
        generate("paillier", 1000)


def test_kernel_argument_checks() -> None:
    m = int_to_limbs(2**127 - 1)
    with pytest.raises(ValueError, match="rows"):
        _core.he_mulmod(np.ones((3, 2), np.uint64), np.ones((2, 2), np.uint64), m, 2)
    with pytest.raises(ValueError, match="does not fit"):
        _core.he_mulmod(np.full((1, 2), 2**63, np.uint64), np.full((1, 2), 2**63, np.uint64),
                        int_to_limbs(2**200 + 1), 1)
