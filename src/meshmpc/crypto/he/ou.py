"""Okamoto–Uchiyama encryption (EUROCRYPT 1998) with short-exponent randomisers.

n = p^2 q with |p| = |q| = k/3; g with g^(p-1) of order p modulo p^2; h = g^n mod n.
E(m) = g^m h^r mod n for m < 2^(|p|-1) < p. Decryption:
m = L(c^(p-1) mod p^2) / L(g^(p-1) mod p^2) mod p with L(x) = (x - 1)/p.
Ciphertexts live modulo n (k bits) instead of n^2 (2k bits) for Paillier, so a
homomorphic addition is a k-bit modular multiplication: about 3x cheaper, which
is why SecretFlow's HEU uses it for SecureBoost. The randomiser exponent r is
short (4 x the security level, base.randomizer_bits_for, as for Paillier), from
fixed-base tables of h; the secret-key holder computes g^m h^r modulo p^2 and q
separately and recombines by CRT. Security: factoring n = p^2 q (no sub-
exponential attack better than for RSA moduli of the same size is known; ECM on
a 683-bit p is far out of reach) and the p-subgroup assumption of OU.
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


class OUPublicKey(PublicKeyBase):
    """Public Okamoto–Uchiyama key (n, g, h)."""

    scheme = "ou"

    def __init__(self, n: int, g: int, h: int, threads: int = DEFAULT_THREADS, window: int = 8):
        super().__init__(n, n, threads, window)
        self.g, self.h = gmpy2.mpz(g), gmpy2.mpz(h)
        self.p_bits = self.bits // 3
        self.plain_bits = self.p_bits - 1
        """Plaintexts are integers below 2^plain_bits (< p)."""
        self._g_table: FixedBase | None = None

    @property
    def randomizer_bits(self) -> int:
        return randomizer_bits_for(self.bits)

    def _randomizer_base(self) -> int:
        return int(self.h)

    def _encode(self, plain: np.ndarray) -> np.ndarray:
        arr = self.check_plain(plain, self.plain_bits)
        if self._g_table is None:
            self._g_table = FixedBase(int(self.g), int(self.n), self.plain_bits, self.window,
                                      self.threads)
        return self._g_table.pow(arr, self.threads)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, **{k: format(int(getattr(self, k)), "x") for k in "ngh"}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], threads: int = DEFAULT_THREADS) -> OUPublicKey:
        """A public key received from a peer (checked for shape, not trusted for more)."""
        if d.get("scheme") != cls.scheme:
            raise ValueError(f"he: expected an ou public key, got {d.get('scheme')!r}")
        n, g, h = (gmpy2.mpz(int(d[k], 16)) for k in "ngh")
        security_of(int(n.bit_length()), allow_insecure=True)
        if not (1 < g < n and 1 < h < n):
            raise ValueError("he: malformed ou public key")
        return cls(n, g, h, threads)


class OUSecretKey:
    """Secret Okamoto–Uchiyama key: decryption and fast CRT encryption."""

    def __init__(self, p: int, q: int, g: int, threads: int = DEFAULT_THREADS, window: int = 10):
        self.p, self.q = gmpy2.mpz(p), gmpy2.mpz(q)
        n = self.p**2 * self.q
        g = gmpy2.mpz(g)
        self.public = OUPublicKey(n, g, gmpy2.powmod(g, n, n), threads)
        self.threads, self._window = threads, window
        p2 = self.p**2
        self._p, self._p2, self._q = int_to_limbs(self.p), int_to_limbs(p2), int_to_limbs(self.q)
        self._pm1, self._qm1 = int_to_limbs(self.p - 1), int_to_limbs(self.q - 1)
        lg = (gmpy2.powmod(g, self.p - 1, p2) - 1) // self.p
        self._lg_inv = int_to_limbs(gmpy2.invert(lg, self.p))
        self._p2inv_q = int_to_limbs(gmpy2.invert(p2, self.q))
        self._tables: list[FixedBase] | None = None

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    @property
    def plain_modulus(self) -> int:
        """The plaintext modulus p (sums wrap modulo p)."""
        return int(self.p)

    def decrypt(self, c: Ciphertexts) -> np.ndarray:
        """Plaintext limb rows (count, limbs of p), each in [0, p)."""
        self.public._check(c)
        t, w = self.threads, self._p2.shape[0]
        cp = _core.he_mod(c.data, self._p2, w, t)
        x = _core.he_powmod_secret(cp, self._pm1, self._p2, w, t)
        lx = _core.he_lfunc(x, self._p, self._p.shape[0], t)
        return _core.he_mulmod(lx, self._lg_inv, self._p, self._p.shape[0], t)

    def encrypt(self, plain: np.ndarray) -> Ciphertexts:
        """E(m) = g^m h^r mod n computed modulo p^2 and q, then recombined by CRT.

        h = g^n has order dividing p - 1 modulo p^2 (and q - 1 modulo q), so the
        key holder may reduce r modulo those (a no-op for the short r of
        randomizer_bits_for, which is already shorter than p).
        """
        pub = self.public
        # The key holder may encrypt any residue mod p (negative values as p - |v|).
        arr = pub.check_plain(plain, int(self.p.bit_length()))
        t = self.threads
        arr = _core.he_mod(arr, self._p, self._p.shape[0], t)
        tabs = self._fixed_bases()
        r = random_limbs(arr.shape[0], pub.randomizer_bits)
        parts = []
        for (gt, ht), mod, order in ((tabs[0:2], self._p2, self._pm1),
                                     (tabs[2:4], self._q, self._qm1)):
            ro = _core.he_mod(r, order, order.shape[0], t)
            parts.append(_core.he_mulmod(gt.pow(arr, t), ht.pow(ro, t), mod, mod.shape[0], t))
        out = _core.he_crt(parts[0], parts[1], self._p2, self._q, self._p2inv_q, pub.ct_limbs, t)
        return Ciphertexts(out, pub.key_id)

    def _fixed_bases(self) -> list[FixedBase]:
        if self._tables is None:
            pub, w, t = self.public, self._window, self.threads
            p2, q, rb = int(self.p**2), int(self.q), pub.randomizer_bits
            self._tables = [
                FixedBase(int(pub.g % p2), p2, int(self.p.bit_length()), w, t),
                FixedBase(int(pub.h % p2), p2, min(rb, int(self.p.bit_length())), w, t),
                FixedBase(int(pub.g % q), q, int(self.p.bit_length()), w, t),
                FixedBase(int(pub.h % q), q, min(rb, int(self.q.bit_length())), w, t),
            ]
        return self._tables

    def to_dict(self) -> dict[str, Any]:
        """The secret key for this party's own storage (never sent)."""
        return {**self.public.to_dict(), "p": format(int(self.p), "x"),
                "q": format(int(self.q), "x")}

    @classmethod
    def from_dict(cls, d: dict[str, Any], threads: int = DEFAULT_THREADS) -> OUSecretKey:
        return cls(int(d["p"], 16), int(d["q"], 16), int(d["g"], 16), threads)


def generate_ou(bits: int = 2048, threads: int = DEFAULT_THREADS, window: int = 10,
                allow_insecure: bool = False) -> OUSecretKey:
    """A fresh Okamoto–Uchiyama key pair with a ``bits``-bit n = p^2 q."""
    security_of(bits, allow_insecure)
    pb = bits // 3
    while True:
        p, q = random_prime(pb), random_prime(bits - 2 * pb)
        if p != q and (p * p * q).bit_length() == bits:
            break
    n, p2 = p * p * q, p * p
    while True:
        g = gmpy2.mpz(int.from_bytes(os.urandom(limbs_for(bits) * 8), "little")) % n
        if g > 1 and gmpy2.gcd(g, n) == 1 and gmpy2.powmod(g, p - 1, p2) % p2 != 1:
            return OUSecretKey(p, q, g, threads, window)
