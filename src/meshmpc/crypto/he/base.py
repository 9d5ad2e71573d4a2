"""What Paillier and Okamoto-Uchiyama share: ciphertext batches, the public operations.

A batch of ciphertexts is a :class:`Ciphertexts`: a (count, limbs) uint64 array
plus the fingerprint of the key it belongs to, so that mixing keys raises
:class:`WrongKeyError` instead of producing garbage. Every operation is one
call into the threaded GMP kernels of ``meshmpc._core`` (csrc/he.c) over the
whole batch. Randomness (encryption exponents) comes from ``os.urandom``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import gmpy2
import numpy as np

from meshmpc import _core
from meshmpc.crypto.he._limbs import int_to_limbs, limbs_for, random_limbs
from meshmpc.crypto.he.errors import PlaintextRangeError, WrongKeyError

SECURITY_BITS = {2048: 112, 3072: 128, 4096: 152}
"""Modulus size -> security level (NIST SP 800-57 factoring estimates)."""

DEFAULT_THREADS = max(1, os.cpu_count() or 1)


def randomizer_bits_for(bits: int) -> int:
    """Length of the short randomiser exponent r of an encryption (h^r) for a modulus size.

    DJN take ceil(k/2) bits. Their assumption is only that a discrete logarithm
    with an exponent this short is hard; the best known attacks on a short
    exponent (Pollard's lambda, baby-step giant-step; van Oorschot and Wiener,
    EUROCRYPT 1996) take about 2^(l/2) steps, so l = 2 * security suffices
    (NIST SP 800-56A sizes Diffie-Hellman exponents that way). We take twice
    that, 4 * security (448 bits at 2048, 512 at 3072), and never more than
    ceil(k/2); test-sized insecure moduli keep ceil(k/2).
    """
    half = (bits + 1) // 2
    sec = SECURITY_BITS.get(bits)
    return min(half, 4 * sec) if sec else half


def security_of(bits: int, allow_insecure: bool) -> int:
    """The security level of a modulus size; small sizes only when explicitly allowed (tests)."""
    if bits in SECURITY_BITS:
        return SECURITY_BITS[bits]
    if allow_insecure and bits >= 256:
        return 0
    raise ValueError(f"he: modulus of {bits} bits: use one of {sorted(SECURITY_BITS)}")


def random_prime(bits: int) -> gmpy2.mpz:
    """A random prime of exactly ``bits`` bits (top two bits set), from the OS generator."""
    while True:
        x = gmpy2.mpz(int.from_bytes(os.urandom((bits + 7) // 8), "big"))
        x = (x & ((gmpy2.mpz(1) << bits) - 1)) | (gmpy2.mpz(3) << (bits - 2)) | 1
        p = gmpy2.next_prime(x)
        if p.bit_length() == bits:
            return p


@dataclass
class Ciphertexts:
    """A batch of ciphertexts under one key: ``data`` is (count, limbs) uint64."""

    data: np.ndarray
    key_id: bytes

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: Any) -> Ciphertexts:
        rows = self.data[index]
        return Ciphertexts(np.ascontiguousarray(rows.reshape(-1, self.data.shape[1])), self.key_id)


CONSTANT_TIME_ENV = "MESHMPC_HE_CONSTANT_TIME"
"""Set to 1 to make every fixed-base power constant-time (see :class:`FixedBase`)."""

CONSTANT_TIME_WINDOW = 6
"""Window of a constant-time table: each window reads all 2^w entries, so the
cost has its minimum near w = 5-7 at 1366- to 4096-bit moduli (measured)."""


def constant_time_default() -> bool:
    """Whether fixed-base powers run in constant time unless a caller says otherwise."""
    return os.environ.get(CONSTANT_TIME_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


class FixedBase:
    """A windowed fixed-base table: base^e mod m in about bits(e)/w multiplications.

    The exponents are secret (encryption randomisers, OU plaintexts). The fast
    path reads one table entry per window at an address set by the exponent's
    digit and skips zero digits: a process sharing the CPU's caches could learn
    digits by cache timing (Flush+Reload, Prime+Probe). ``constant_time`` (or
    MESHMPC_HE_CONSTANT_TIME=1) reads every entry of every window and multiplies
    every window, with a smaller window: about 2.5x slower (protocols/he.md).
    """

    def __init__(self, base: int, modulus: int, exp_bits: int, window: int, threads: int,
                 constant_time: bool | None = None):
        self.modulus = int_to_limbs(modulus)
        self.exp_bits = exp_bits
        self.constant_time = constant_time_default() if constant_time is None else constant_time
        if self.constant_time:
            window = min(window, CONSTANT_TIME_WINDOW)
        nwin = (exp_bits + window - 1) // window
        self.table = _core.he_fb_table(int_to_limbs(base), window, nwin, self.modulus, threads)

    def pow(self, exps: np.ndarray, threads: int) -> np.ndarray:
        """Row-wise base^e mod m (e as limb rows of at most ``exp_bits`` bits)."""
        width = self.modulus.shape[0]
        return _core.he_fb_pow(self.table, exps, self.modulus, width, threads,
                               self.constant_time)


class PublicKeyBase:
    """Operations anyone holding the public key can do on ciphertexts."""

    scheme = "?"

    def __init__(self, n: int, ct_modulus: int, threads: int, window: int):
        self.n = gmpy2.mpz(n)
        self.bits = int(self.n.bit_length())
        self.ct_modulus = int_to_limbs(ct_modulus)
        self.ct_limbs = int(self.ct_modulus.shape[0])
        self.threads = threads
        self.window = window
        self.key_id = hashlib.sha256(f"{self.scheme}:{int(self.n):x}".encode()).digest()[:16]
        self._rand_table: FixedBase | None = None

    # -- to be provided by the scheme --
    @property
    def randomizer_bits(self) -> int:
        raise NotImplementedError

    def _randomizer_base(self) -> int:
        raise NotImplementedError

    def _encode(self, plain: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared --
    def _check(self, *batches: Ciphertexts) -> None:
        for b in batches:
            if b.key_id != self.key_id:
                raise WrongKeyError(
                    f"he: ciphertexts of key {b.key_id.hex()} used with key {self.key_id.hex()}"
                )

    def wrap(self, data: np.ndarray) -> Ciphertexts:
        """Ciphertexts received from a peer: check the shape and range, tag with this key."""
        arr = np.ascontiguousarray(data, dtype=np.uint64)
        if arr.ndim != 2 or arr.shape[1] != self.ct_limbs:
            raise ValueError(f"he: ciphertexts must be (count, {self.ct_limbs}) limbs")
        return Ciphertexts(arr, self.key_id)

    def randomizers(self, count: int) -> np.ndarray:
        """``count`` fresh encryptions of zero's randomising factors (h^r mod m)."""
        if self._rand_table is None:
            self._rand_table = FixedBase(self._randomizer_base(), int(_int(self.ct_modulus)),
                                         self.randomizer_bits, self.window, self.threads)
        return self._rand_table.pow(random_limbs(count, self.randomizer_bits), self.threads)

    def encrypt(self, plain: np.ndarray) -> Ciphertexts:
        """Encrypt plaintext limb rows (each < the plaintext bound) with the public key."""
        encoded = self._encode(plain)
        noise = self.randomizers(encoded.shape[0])
        out = _core.he_mulmod(encoded, noise, self.ct_modulus, self.ct_limbs, self.threads)
        return Ciphertexts(out, self.key_id)

    def add(self, a: Ciphertexts, b: Ciphertexts) -> Ciphertexts:
        """E(x) + E(y) -> E(x + y), row-wise (one side may be a single ciphertext)."""
        self._check(a, b)
        out = _core.he_mulmod(a.data, b.data, self.ct_modulus, self.ct_limbs, self.threads)
        return Ciphertexts(out, self.key_id)

    def neg(self, a: Ciphertexts) -> Ciphertexts:
        """E(x) -> E(-x)."""
        self._check(a)
        out = _core.he_invert(a.data, self.ct_modulus, self.ct_limbs, self.threads)
        return Ciphertexts(out, self.key_id)

    def sub(self, a: Ciphertexts, b: Ciphertexts) -> Ciphertexts:
        """E(x) - E(y) -> E(x - y)."""
        return self.add(a, self.neg(b))

    def mul_plain(self, a: Ciphertexts, k: np.ndarray) -> Ciphertexts:
        """E(x) * k -> E(k x) for non-negative plaintext scalars k (limb rows or one row)."""
        self._check(a)
        out = _core.he_powmod(a.data, k, self.ct_modulus, self.ct_limbs, self.threads)
        return Ciphertexts(out, self.key_id)

    def rerandomize(self, a: Ciphertexts) -> Ciphertexts:
        """Fresh randomness on the same plaintexts (hides how a ciphertext was computed)."""
        self._check(a)
        noise = self.randomizers(len(a))
        out = _core.he_mulmod(a.data, noise, self.ct_modulus, self.ct_limbs, self.threads)
        return Ciphertexts(out, self.key_id)

    def pack(self, a: Ciphertexts, k: int, shift_bits: int) -> Ciphertexts:
        """Rows i*k..i*k+k-1 -> one ciphertext of sum_j x_j 2^(shift_bits j) (SecureBoost+)."""
        self._check(a)
        pad = (-len(a)) % k
        data = a.data
        if pad:
            data = np.vstack([data, np.tile(int_to_limbs(1, self.ct_limbs), (pad, 1))])
        out = _core.he_horner(data, k, shift_bits, self.ct_modulus, self.ct_limbs, self.threads)
        return Ciphertexts(out, self.key_id)

    def histogram(self, a: Ciphertexts, rows: np.ndarray, bins: np.ndarray, nbins: int,
                  limits: np.ndarray | None = None) -> tuple[Ciphertexts, np.ndarray]:
        """Per-feature encrypted bin sums of a[rows] (bins: features x all rows, uint8).

        With ``limits`` (one per feature), bins at or above limits[f] are not summed
        (left as encryptions of 0 with no randomness, unfilled): for callers that never
        read them, such as SecureBoost's top and missing-value bins.
        """
        self._check(a)
        sums, filled = _core.he_hist(a.data, rows, bins, nbins, self.ct_modulus, self.threads,
                                     limits)
        return Ciphertexts(sums.reshape(-1, self.ct_limbs), self.key_id), filled

    def check_plain(self, plain: np.ndarray, bound_bits: int) -> np.ndarray:
        """Plaintext limb rows as a 2-D uint64 array, each below 2^bound_bits."""
        arr = np.ascontiguousarray(plain, dtype=np.uint64)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        full, spare = divmod(bound_bits, 64)
        high = arr[:, full + (1 if spare else 0):]
        too_big = np.any(high != 0, axis=1) if high.shape[1] else np.zeros(arr.shape[0], bool)
        if spare and arr.shape[1] > full:
            too_big |= arr[:, full] >= np.uint64(1 << spare)
        if np.any(too_big):
            row = int(np.argmax(too_big))
            raise PlaintextRangeError(
                f"he {self.scheme}: plaintext row {row} has more than {bound_bits} bits"
            )
        return arr


def _int(limbs: np.ndarray) -> int:
    return int.from_bytes(np.ascontiguousarray(limbs, dtype=np.uint64).tobytes(), "little")


__all__ = ["Ciphertexts", "FixedBase", "PublicKeyBase", "limbs_for", "randomizer_bits_for",
           "security_of"]
