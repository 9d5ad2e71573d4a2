"""Key generation for the subgroup shape of Paillier-DJN (opt-in; see protocols/he.md).

Shape (Paillier's "scheme 3", EUROCRYPT 1999, with the randomiser of Damgård,
Jurik and Nielsen; the fast variant of Ma, Han and Lei, "Optimized Paillier's
cryptosystem with fast encryption and decryption", ACSAC 2021; subgroups of
hidden small order after Groth, "Cryptography in subgroups of Z_n^*", TCC 2005):

* p = 2 a_p b_p + 1 and q = 2 a_q b_q + 1 with a_p, a_q secret primes of
  ``subgroup_prime_bits`` bits (2 x security: 224 at 2048) and b_p, b_q random;
* h of order a = a_p a_q in Z_n^* (h = x^((p-1)/a_p) mod p, likewise mod q, by CRT),
  h_s = h^n mod n^2 (an n-th residue of order a), public (n, h_s, |a|);
* E(m) = (1 + m n) h_s^r mod n^2 exactly as the standard shape, with r of |a| + 64
  bits (uniform over <h_s> to 2^-64); the key holder decrypts with
  c^(a_p) mod p^2 = 1 + m a_p n mod p^2 (and likewise mod q^2), i.e. 224-bit
  exponents instead of 1024-bit p - 1.

Sizes: Coron, Joux, Mandal, Naccache and Tibouchi ("Cryptanalysis of the RSA
subgroup assumption from TCC 2005", PKC 2011) factor n given an element of order
a_p a_q in about 2^(l/2) operations for l-bit a_p, a_q, so l = 2 x security.
Semantic security rests on deciding membership in <h_s> being hard (a subgroup
decision assumption, stronger than DCR); not the default for that reason.
"""

from __future__ import annotations

import os

import gmpy2

from meshmpc.crypto.he.base import DEFAULT_THREADS, SECURITY_BITS, random_prime, security_of
from meshmpc.crypto.he.paillier import PaillierSecretKey

PRIME_TEST_ROUNDS = 40
"""Miller-Rabin rounds for p and q (after gmpy2's trial division)."""


def subgroup_prime_bits(bits: int) -> int:
    """Bits of a_p and a_q: 2 x the security level (224 at 2048, 256 at 3072) against the
    2^(l/2) factoring attack of Coron et al.; test-sized insecure moduli take bits / 8."""
    sec = SECURITY_BITS.get(bits)
    return 2 * sec if sec else max(32, bits // 8)


def _uniform_below(bound: int) -> gmpy2.mpz:
    """A uniform integer in [0, bound) from the OS generator (64 extra bits, reduced)."""
    nbytes = (int(bound).bit_length() + 64 + 7) // 8
    return gmpy2.mpz(int.from_bytes(os.urandom(nbytes), "little")) % bound


def prime_with_factor(bits: int, alpha: gmpy2.mpz) -> gmpy2.mpz:
    """A prime p = 2 alpha b + 1 of exactly ``bits`` bits (top two bits set), b random."""
    low = (gmpy2.mpz(3) << (bits - 2)) // (2 * alpha) + 1
    high = ((gmpy2.mpz(1) << bits) - 1) // (2 * alpha)
    while True:
        p = 2 * alpha * (low + _uniform_below(high - low)) + 1
        if gmpy2.is_prime(p, PRIME_TEST_ROUNDS):
            return p


def _element_of_order(p: gmpy2.mpz, alpha: gmpy2.mpz) -> gmpy2.mpz:
    """A random element of order alpha (a prime dividing p - 1) modulo p."""
    while True:
        x = 2 + _uniform_below(p - 3)
        h = gmpy2.powmod(x, (p - 1) // alpha, p)
        if h != 1:
            return h


def generate_subgroup_paillier(bits: int = 2048, threads: int = DEFAULT_THREADS,
                               window: int = 12, allow_insecure: bool = False
                               ) -> PaillierSecretKey:
    """A fresh subgroup-shape key pair with a ``bits``-bit modulus (see the module doc)."""
    security_of(bits, allow_insecure)
    sub = subgroup_prime_bits(bits)
    while True:
        ap, aq = random_prime(sub), random_prime(sub)
        p, q = prime_with_factor(bits // 2, ap), prime_with_factor(bits - bits // 2, aq)
        n = p * q
        if ap != aq and p != q and n.bit_length() == bits and \
                gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    hp, hq = _element_of_order(p, ap), _element_of_order(q, aq)
    h = (hp + p * ((hq - hp) * gmpy2.invert(p, q) % q)) % n
    hs = gmpy2.powmod(h, n, n * n)
    return PaillierSecretKey(p, q, hs, threads, window, alphas=(ap, aq))
