"""Paillier with Damgård–Jurik–Nielsen short-exponent randomisers and CRT decryption.

Scheme (Paillier, EUROCRYPT 1999, with g = 1 + n): E(m) = (1 + n)^m r^n mod n^2,
so (1 + n)^m = 1 + m n costs one multiplication. The randomiser r^n is replaced
as in Damgård, Jurik and Nielsen ("A generalization of Paillier's public-key
system with applications to electronic voting", IJIS 2010, section 4.1): a
public h_s = h^n mod n^2 with h = -x^2 mod n for a random x, and E(m) = (1 + m n)
h_s^r mod n^2 with a short random r (semantic security then rests on DCR plus
the hardness of discrete logarithms with short exponents). DJN take ceil(k/2)
bits; we take 4 x the security level (448 bits at k = 2048, see
base.randomizer_bits_for). h_s^r is a fixed-base power: a table of
h_s^(d 2^(w j)) in Montgomery form turns it into ceil(448/w) Montgomery
products (45 with the public key's w = 10).

The secret-key holder encrypts faster by computing the same value modulo p^2 and
q^2 separately (half-size operands, 2 x ceil(448/w) products: 76 at the secret
key's w = 12) and recombining by CRT, and decrypts by CRT
(m_p = L_p(c^(p-1) mod p^2) h_p mod p, likewise for q; Paillier section 7).

Key shapes: "standard" (above; the default) and "subgroup" (opt-in,
:mod:`meshmpc.crypto.he.paillier_subgroup`): p - 1 and q - 1 have secret prime
factors a_p, a_q of 2 x security bits and h_s generates the subgroup of order
a_p a_q, so decryption raises to a_p and a_q instead of p - 1 and q - 1. Its
security rests on a subgroup assumption of its own: see protocols/he.md.
"""

from __future__ import annotations

import os
from typing import Any

import gmpy2
import numpy as np

from meshmpc import _core
from meshmpc.crypto.he._limbs import int_to_limbs, limbs_for, random_limbs
from meshmpc.crypto.he.base import (
    DEFAULT_THREADS,
    Ciphertexts,
    FixedBase,
    PublicKeyBase,
    random_prime,
    randomizer_bits_for,
    security_of,
)

STATISTICAL_BITS = 64
"""Extra randomiser bits over a known group order: h^r is then 2^-64-close to uniform."""


class PaillierPublicKey(PublicKeyBase):
    """Public Paillier key (n, h_s): encrypt, add, multiply by plaintexts, re-randomise."""

    scheme = "paillier"

    def __init__(self, n: int, hs: int, threads: int = DEFAULT_THREADS, window: int = 10,
                 subgroup_bits: int | None = None):
        super().__init__(n, gmpy2.mpz(n) ** 2, threads, window)
        self.hs = gmpy2.mpz(hs)
        self.subgroup_bits = subgroup_bits
        """Subgroup key shape: the order of h_s is below 2^subgroup_bits (None: standard)."""
        self.n_limbs = int_to_limbs(self.n)
        self.plain_bits = self.bits - 2
        """Capacity for packed values: below 2^plain_bits (< n/2, room for signed values).
        Any plaintext in [0, n) encrypts (negative values as n - |v|)."""

    @property
    def key_shape(self) -> str:
        """"standard" or "subgroup" (see the module docstring)."""
        return "standard" if self.subgroup_bits is None else "subgroup"

    @property
    def randomizer_bits(self) -> int:
        if self.subgroup_bits is not None:  # uniform over the subgroup, statistically
            return self.subgroup_bits + STATISTICAL_BITS
        return randomizer_bits_for(self.bits)

    def _randomizer_base(self) -> int:
        return int(self.hs)

    def _encode(self, plain: np.ndarray) -> np.ndarray:
        arr = self.check_plain(plain, self.bits)
        arr = _core.he_mod(arr, self.n_limbs, self.n_limbs.shape[0], self.threads)
        return _core.he_linear(arr, self.n_limbs, self.ct_limbs, self.threads)

    def to_dict(self) -> dict[str, Any]:
        """The public key as sent to peers."""
        out: dict[str, Any] = {"scheme": self.scheme, "n": format(int(self.n), "x"),
                               "hs": format(int(self.hs), "x")}
        if self.subgroup_bits is not None:
            out.update(shape="subgroup", subgroup_bits=self.subgroup_bits)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], threads: int = DEFAULT_THREADS) -> PaillierPublicKey:
        """A public key received from a peer (checked for shape, not trusted for more)."""
        if d.get("scheme") != cls.scheme:
            raise ValueError(f"he: expected a paillier public key, got {d.get('scheme')!r}")
        n, hs = gmpy2.mpz(int(d["n"], 16)), gmpy2.mpz(int(d["hs"], 16))
        security_of(int(n.bit_length()), allow_insecure=True)
        if n % 2 == 0 or not 1 < hs < n * n:
            raise ValueError("he: malformed paillier public key")
        shape = d.get("shape", "standard")
        if shape == "standard":
            return cls(n, hs, threads)
        bits = d.get("subgroup_bits")
        if shape != "subgroup" or not isinstance(bits, int) or not 64 <= bits <= n.bit_length():
            raise ValueError(f"he: paillier public key of unknown shape {shape!r} "
                             f"(subgroup_bits {bits!r})")
        return cls(n, hs, threads, subgroup_bits=bits)


class PaillierSecretKey:
    """Secret Paillier key: CRT decryption and fast CRT encryption.

    ``alphas`` = (a_p, a_q) for the subgroup key shape: the order of h_s modulo p^2
    and q^2, used as the decryption exponents instead of p - 1 and q - 1.
    """

    def __init__(self, p: int, q: int, hs: int, threads: int = DEFAULT_THREADS, window: int = 12,
                 alphas: tuple[int, int] | None = None):
        self.p, self.q = gmpy2.mpz(p), gmpy2.mpz(q)
        self.alphas = None if alphas is None else (gmpy2.mpz(alphas[0]), gmpy2.mpz(alphas[1]))
        sub_bits = None if self.alphas is None else int((self.alphas[0] * self.alphas[1])
                                                        .bit_length())
        self.public = PaillierPublicKey(self.p * self.q, hs, threads, subgroup_bits=sub_bits)
        self.threads = threads
        p2, q2 = self.p**2, self.q**2
        self._p, self._q = int_to_limbs(self.p), int_to_limbs(self.q)
        self._p2, self._q2 = int_to_limbs(p2), int_to_limbs(q2)
        ep, eq = (self.p - 1, self.q - 1) if self.alphas is None else self.alphas
        self._ep, self._eq = int_to_limbs(ep), int_to_limbs(eq)
        # L_p((1+n)^e mod p^2) = e q mod p, so h_p = (e q)^-1 mod p (e = p - 1: (-q)^-1).
        self._hp = int_to_limbs(gmpy2.invert(ep * self.q % self.p, self.p))
        self._hq = int_to_limbs(gmpy2.invert(eq * self.p % self.q, self.q))
        self._pinv_q = int_to_limbs(gmpy2.invert(self.p, self.q))
        self._p2inv_q2 = int_to_limbs(gmpy2.invert(p2, q2))
        self._tables: tuple[FixedBase, FixedBase] | None = None
        self._window = window

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    @property
    def plain_modulus(self) -> int:
        """The plaintext modulus n (sums wrap modulo n)."""
        return int(self.public.n)

    def decrypt(self, c: Ciphertexts) -> np.ndarray:
        """Plaintext limb rows (count, limbs of n), each in [0, n).

        A ciphertext outside the key's group (for the subgroup shape: not made
        under this key) raises ValueError instead of decrypting to garbage.
        """
        self.public._check(c)
        t = self.threads
        mp = self._half(c.data, self._p2, self._ep, self._p, self._hp, t)
        mq = self._half(c.data, self._q2, self._eq, self._q, self._hq, t)
        width = self.public.n_limbs.shape[0]
        return _core.he_crt(mp, mq, self._p, self._q, self._pinv_q, width, t)

    @staticmethod
    def _half(c: np.ndarray, p2: np.ndarray, e: np.ndarray, p: np.ndarray, hp: np.ndarray,
              t: int) -> np.ndarray:
        cp = _core.he_mod(c, p2, p2.shape[0], t)
        x = _core.he_powmod_secret(cp, e, p2, p2.shape[0], t)
        lp = _core.he_lfunc(x, p, p.shape[0], t)
        return _core.he_mulmod(lp, hp, p, p.shape[0], t)

    def _half_exponent_bits(self) -> tuple[int, int]:
        """Randomiser bits per CRT half: the public length (standard: the same r for
        both halves), or the order of h_s there plus the statistical margin."""
        if self.alphas is None:
            bits = self.public.randomizer_bits
            return bits, bits
        return (int(self.alphas[0].bit_length()) + STATISTICAL_BITS,
                int(self.alphas[1].bit_length()) + STATISTICAL_BITS)

    def encrypt(self, plain: np.ndarray) -> Ciphertexts:
        """Encrypt like the public key, but by CRT over p^2 and q^2 (about 2x faster).

        Subgroup shape: independent exponents modulo p^2 and q^2, each of the order
        of h_s there plus 64 bits; by the CRT their pair is h_s^r for an r uniform
        modulo the order (to 2^-64), the distribution of a public-key encryption.
        """
        pub = self.public
        lin = pub._encode(plain)
        bp, bq = self._half_exponent_bits()
        t = self.threads
        if self._tables is None:
            w = self._window
            p2, q2 = int(self.p**2), int(self.q**2)
            self._tables = (FixedBase(int(pub.hs % p2), p2, bp, w, t),
                            FixedBase(int(pub.hs % q2), q2, bq, w, t))
        rp = random_limbs(lin.shape[0], bp)
        rq = rp if self.alphas is None else random_limbs(lin.shape[0], bq)
        cp = _core.he_mulmod(lin, self._tables[0].pow(rp, t), self._p2, self._p2.shape[0], t)
        cq = _core.he_mulmod(lin, self._tables[1].pow(rq, t), self._q2, self._q2.shape[0], t)
        out = _core.he_crt(cp, cq, self._p2, self._q2, self._p2inv_q2, pub.ct_limbs, t)
        return Ciphertexts(out, pub.key_id)

    def to_dict(self) -> dict[str, Any]:
        """The secret key for this party's own storage (never sent)."""
        out = {**self.public.to_dict(), "p": format(int(self.p), "x"),
               "q": format(int(self.q), "x")}
        if self.alphas is not None:
            out.update(alpha_p=format(int(self.alphas[0]), "x"),
                       alpha_q=format(int(self.alphas[1]), "x"))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], threads: int = DEFAULT_THREADS) -> PaillierSecretKey:
        alphas = (int(d["alpha_p"], 16), int(d["alpha_q"], 16)) if "alpha_p" in d else None
        return cls(int(d["p"], 16), int(d["q"], 16), int(d["hs"], 16), threads, alphas=alphas)


def generate_paillier(bits: int = 2048, threads: int = DEFAULT_THREADS, window: int = 12,
                      allow_insecure: bool = False, key_shape: str = "standard"
                      ) -> PaillierSecretKey:
    """A fresh Paillier key pair with a ``bits``-bit modulus (2048: 112-bit security).

    ``key_shape="subgroup"`` makes the opt-in fast-decryption shape
    (:func:`meshmpc.crypto.he.paillier_subgroup.generate_subgroup_paillier`).
    """
    security_of(bits, allow_insecure)
    if key_shape == "subgroup":
        from meshmpc.crypto.he.paillier_subgroup import generate_subgroup_paillier

        return generate_subgroup_paillier(bits, threads, window, allow_insecure)
    if key_shape != "standard":
        raise ValueError(f"he: unknown paillier key shape {key_shape!r} (standard, subgroup)")
    while True:
        p, q = random_prime(bits // 2), random_prime(bits - bits // 2)
        n = p * q
        if p != q and n.bit_length() == bits and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    while True:
        x = gmpy2.mpz(int.from_bytes(os.urandom(limbs_for(bits) * 8), "little")) % n
        if x > 1 and gmpy2.gcd(x, n) == 1:
            break
    h = (-(x * x)) % n
    hs = gmpy2.powmod(h, n, n * n)
    return PaillierSecretKey(p, q, hs, threads, window)
