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


class PaillierPublicKey(PublicKeyBase):
    """Public Paillier key (n, h_s): encrypt, add, multiply by plaintexts, re-randomise."""

    scheme = "paillier"

    def __init__(self, n: int, hs: int, threads: int = DEFAULT_THREADS, window: int = 10):
        super().__init__(n, gmpy2.mpz(n) ** 2, threads, window)
        self.hs = gmpy2.mpz(hs)
        self.n_limbs = int_to_limbs(self.n)
        self.plain_bits = self.bits - 2
        """Capacity for packed values: below 2^plain_bits (< n/2, room for signed values).
        Any plaintext in [0, n) encrypts (negative values as n - |v|)."""

    @property
    def randomizer_bits(self) -> int:
        return randomizer_bits_for(self.bits)

    def _randomizer_base(self) -> int:
        return int(self.hs)

    def _encode(self, plain: np.ndarray) -> np.ndarray:
        arr = self.check_plain(plain, self.bits)
        arr = _core.he_mod(arr, self.n_limbs, self.n_limbs.shape[0], self.threads)
        return _core.he_linear(arr, self.n_limbs, self.ct_limbs, self.threads)

    def to_dict(self) -> dict[str, Any]:
        """The public key as sent to peers."""
        return {"scheme": self.scheme, "n": format(int(self.n), "x"),
                "hs": format(int(self.hs), "x")}

    @classmethod
    def from_dict(cls, d: dict[str, Any], threads: int = DEFAULT_THREADS) -> PaillierPublicKey:
        """A public key received from a peer (checked for shape, not trusted for more)."""
        if d.get("scheme") != cls.scheme:
            raise ValueError(f"he: expected a paillier public key, got {d.get('scheme')!r}")
        n, hs = gmpy2.mpz(int(d["n"], 16)), gmpy2.mpz(int(d["hs"], 16))
        security_of(int(n.bit_length()), allow_insecure=True)
        if n % 2 == 0 or not 1 < hs < n * n:
            raise ValueError("he: malformed paillier public key")
        return cls(n, hs, threads)


class PaillierSecretKey:
    """Secret Paillier key: CRT decryption and fast CRT encryption."""

    def __init__(self, p: int, q: int, hs: int, threads: int = DEFAULT_THREADS, window: int = 12):
        self.p, self.q = gmpy2.mpz(p), gmpy2.mpz(q)
        self.public = PaillierPublicKey(self.p * self.q, hs, threads)
        self.threads = threads
        p2, q2 = self.p**2, self.q**2
        self._p, self._q = int_to_limbs(self.p), int_to_limbs(self.q)
        self._p2, self._q2 = int_to_limbs(p2), int_to_limbs(q2)
        self._pm1, self._qm1 = int_to_limbs(self.p - 1), int_to_limbs(self.q - 1)
        # L_p((1+n)^(p-1) mod p^2) = -q mod p, so h_p = (-q)^-1 mod p (and symmetrically).
        self._hp = int_to_limbs(gmpy2.invert(-self.q % self.p, self.p))
        self._hq = int_to_limbs(gmpy2.invert(-self.p % self.q, self.q))
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
        """Plaintext limb rows (count, limbs of n), each in [0, n)."""
        self.public._check(c)
        t = self.threads
        mp = self._half(c.data, self._p2, self._pm1, self._p, self._hp, t)
        mq = self._half(c.data, self._q2, self._qm1, self._q, self._hq, t)
        width = self.public.n_limbs.shape[0]
        return _core.he_crt(mp, mq, self._p, self._q, self._pinv_q, width, t)

    @staticmethod
    def _half(c: np.ndarray, p2: np.ndarray, pm1: np.ndarray, p: np.ndarray, hp: np.ndarray,
              t: int) -> np.ndarray:
        cp = _core.he_mod(c, p2, p2.shape[0], t)
        x = _core.he_powmod(cp, pm1, p2, p2.shape[0], t)
        lp = _core.he_lfunc(x, p, p.shape[0], t)
        return _core.he_mulmod(lp, hp, p, p.shape[0], t)

    def encrypt(self, plain: np.ndarray) -> Ciphertexts:
        """Encrypt like the public key, but by CRT over p^2 and q^2 (about 2x faster)."""
        pub = self.public
        lin = pub._encode(plain)
        if self._tables is None:
            bits = pub.randomizer_bits
            w, t = self._window, self.threads
            p2, q2 = int(self.p**2), int(self.q**2)
            self._tables = (FixedBase(int(pub.hs % p2), p2, bits, w, t),
                            FixedBase(int(pub.hs % q2), q2, bits, w, t))
        r = random_limbs(lin.shape[0], pub.randomizer_bits)
        t = self.threads
        cp = _core.he_mulmod(lin, self._tables[0].pow(r, t), self._p2, self._p2.shape[0], t)
        cq = _core.he_mulmod(lin, self._tables[1].pow(r, t), self._q2, self._q2.shape[0], t)
        out = _core.he_crt(cp, cq, self._p2, self._q2, self._p2inv_q2, pub.ct_limbs, t)
        return Ciphertexts(out, pub.key_id)

    def to_dict(self) -> dict[str, Any]:
        """The secret key for this party's own storage (never sent)."""
        return {**self.public.to_dict(), "p": format(int(self.p), "x"),
                "q": format(int(self.q), "x")}

    @classmethod
    def from_dict(cls, d: dict[str, Any], threads: int = DEFAULT_THREADS) -> PaillierSecretKey:
        return cls(int(d["p"], 16), int(d["q"], 16), int(d["hs"], 16), threads)


def generate_paillier(bits: int = 2048, threads: int = DEFAULT_THREADS, window: int = 12,
                      allow_insecure: bool = False) -> PaillierSecretKey:
    """A fresh Paillier key pair with a ``bits``-bit modulus (2048: 112-bit security)."""
    security_of(bits, allow_insecure)
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
