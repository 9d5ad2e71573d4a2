"""The subgroup key shape of Paillier (opt-in): known answers, structure, rejection.

The homomorphic property tests of tests/crypto/test_he.py also run on this shape
(scheme "paillier-subgroup"); here: the definition's known answer on fixed primes,
the key's structure (orders and sizes at 2048 bits), that ciphertexts outside the
subgroup are refused rather than decrypted, and the key's wire forms.
"""

from __future__ import annotations

import gmpy2
import numpy as np
import pytest

from meshmpc import _core
from meshmpc.crypto.he import PaillierPublicKey, PaillierSecretKey, generate
from meshmpc.crypto.he._limbs import int_to_limbs, ints_to_limbs, limbs_to_ints
from meshmpc.crypto.he.paillier_subgroup import subgroup_prime_bits


def fixed_prime_with_factor(alpha: gmpy2.mpz, start: int) -> gmpy2.mpz:
    """The first prime 2 alpha b + 1 with b >= start (deterministic, for known answers)."""
    b = gmpy2.mpz(start)
    while not gmpy2.is_prime(2 * alpha * b + 1, 40):
        b += 1
    return 2 * alpha * b + 1


AP = gmpy2.next_prime(gmpy2.mpz(2) ** 63 + 1000)
AQ = gmpy2.next_prime(gmpy2.mpz(2) ** 63 + 5000)
P = fixed_prime_with_factor(AP, 2**190 + 77)
Q = fixed_prime_with_factor(AQ, 2**190 + 4321)


def fixed_key() -> tuple[PaillierSecretKey, gmpy2.mpz]:
    """A 512-bit subgroup key from fixed primes, and h_s built by the definition."""
    n = P * Q
    hp = gmpy2.powmod(3, (P - 1) // AP, P)
    hq = gmpy2.powmod(3, (Q - 1) // AQ, Q)
    h = (hp + P * ((hq - hp) * gmpy2.invert(P, Q) % Q)) % n
    hs = gmpy2.powmod(h, n, n * n)
    return PaillierSecretKey(P, Q, hs, threads=1, alphas=(AP, AQ)), hs


def test_known_answer_decrypts_the_definition() -> None:
    sk, hs = fixed_key()
    n, n2 = P * Q, (P * Q) ** 2
    assert gmpy2.powmod(hs, AP * AQ, n2) == 1 and gmpy2.powmod(hs, AP, n2) != 1
    m, r = 31415926535897932384626, gmpy2.mpz(2) ** 150 + 12345
    c = (1 + m * n) * gmpy2.powmod(hs, r, n2) % n2
    got = sk.decrypt(sk.public.wrap(int_to_limbs(c, sk.public.ct_limbs).reshape(1, -1)))
    assert limbs_to_ints(got) == [m]
    # The key holder's CRT encryption decrypts the same way and is randomised.
    vals = [0, 1, m, int(n) - 1]
    a, b = sk.encrypt(ints_to_limbs(vals, 8)), sk.encrypt(ints_to_limbs(vals, 8))
    assert limbs_to_ints(sk.decrypt(a)) == vals and not np.array_equal(a.data, b.data)


def test_ciphertexts_outside_the_subgroup_are_refused() -> None:
    sk, _ = fixed_key()
    n, n2 = P * Q, (P * Q) ** 2
    y = gmpy2.mpz(987654321987654321)
    standard = (1 + 5 * n) * gmpy2.powmod(y, n, n2) % n2  # a textbook Paillier ciphertext
    with pytest.raises(ValueError, match="not in this key's group"):
        sk.decrypt(sk.public.wrap(int_to_limbs(standard, sk.public.ct_limbs).reshape(1, -1)))


def test_2048_bit_key_structure_and_sizes() -> None:
    sk = generate("paillier", 2048, key_shape="subgroup", threads=2)
    pk = sk.public
    ap, aq = sk.alphas
    assert subgroup_prime_bits(2048) == 224 and subgroup_prime_bits(3072) == 256
    assert ap.bit_length() == aq.bit_length() == 224
    assert (sk.p - 1) % ap == 0 and (sk.q - 1) % aq == 0
    assert pk.n.bit_length() == 2048 and pk.key_shape == "subgroup"
    assert gmpy2.powmod(pk.hs, ap * aq, pk.n**2) == 1
    assert gmpy2.powmod(pk.hs, ap, pk.n**2) != 1 and gmpy2.powmod(pk.hs, aq, pk.n**2) != 1
    assert pk.subgroup_bits in (447, 448) and pk.randomizer_bits == pk.subgroup_bits + 64
    vals = [int(v) for v in np.random.default_rng(1).integers(0, 2**62, 40)]
    a, b = sk.encrypt(ints_to_limbs(vals, 1)), pk.encrypt(ints_to_limbs(vals, 1))
    assert limbs_to_ints(sk.decrypt(pk.add(a, b))) == [2 * v for v in vals]
    assert limbs_to_ints(sk.decrypt(pk.rerandomize(b))) == vals


def test_wire_forms_keep_the_shape() -> None:
    sk = generate("paillier", 1024, key_shape="subgroup", allow_insecure=True)
    d = sk.public.to_dict()
    assert d["shape"] == "subgroup" and d["subgroup_bits"] == sk.public.subgroup_bits
    pk = PaillierPublicKey.from_dict(d)
    assert pk.key_shape == "subgroup" and pk.randomizer_bits == sk.public.randomizer_bits
    again = PaillierSecretKey.from_dict(sk.to_dict(), threads=1)
    c = pk.encrypt(ints_to_limbs([77, 88], 1))
    assert limbs_to_ints(again.decrypt(c)) == [77, 88]
    std = generate("paillier", 1024, allow_insecure=True).public
    assert "shape" not in std.to_dict() and std.key_shape == "standard"
    with pytest.raises(ValueError, match="unknown shape"):
        PaillierPublicKey.from_dict({**d, "shape": "tiny"})
    with pytest.raises(ValueError, match="subgroup_bits"):
        PaillierPublicKey.from_dict({**d, "subgroup_bits": 8})


def test_key_shape_errors() -> None:
    with pytest.raises(ValueError, match="paillier only"):
        generate("ou", 1024, key_shape="subgroup", allow_insecure=True)
    with pytest.raises(ValueError, match="unknown paillier key shape"):
        generate("paillier", 1024, key_shape="round", allow_insecure=True)


def test_secret_power_is_exact_for_short_and_long_exponents() -> None:
    m = gmpy2.next_prime(gmpy2.mpz(2) ** 2047 + 12345) ** 1  # odd 2048-bit modulus
    a = [int(gmpy2.mpz(7) ** 900 % m), 2, 0, 1]
    for e in ([2**223 + 5, 3, 0, 1], [2**1023 + 99, 2**1000, 5, 2**64]):
        width = 16 if max(e).bit_length() > 256 else 4
        got = _core.he_powmod_secret(ints_to_limbs(a, 32), ints_to_limbs(e, width),
                                     int_to_limbs(m), 32)
        assert limbs_to_ints(got) == [int(gmpy2.powmod(x, y, m)) for x, y in zip(a, e,
                                                                                    strict=True)]
    with pytest.raises(ValueError, match="odd"):
        _core.he_powmod_secret(ints_to_limbs(a, 32), ints_to_limbs([3], 1), int_to_limbs(m + 1),
                               32)
