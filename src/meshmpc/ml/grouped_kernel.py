"""The owner's products of the HE grouped sum on the fused C kernel (csrc/bfv_sparse.c).

SEAL keeps the scheme (parameters, keys, encryption, decryption, the validation of what
the bank sends); this module only hands the owner's linear combination
``sum_b ct_b * P_{b,g}`` to C: each plaintext P (one +-1 monomial per row and feature)
is built from the bin indices in place, brought into the NTT domain and multiplied
into a 128-bit accumulator, on every core, with no per-product Python call,
allocation or serialisation (the SEAL route cost ~530 CPU-us a product, half of it
outside the NTT). The result is in coefficient form and equals SEAL's
``multiply_plain`` / ``add_inplace`` sum bit for bit (tests/ml/test_bfv_sparse.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from meshmpc import _core

if TYPE_CHECKING:
    from meshmpc.ml.grouped_he import GroupLayout


def primitive_root(p: int, n: int) -> int:
    """A primitive 2n-th root of unity modulo the prime p (p = 1 mod 2n)."""
    if (p - 1) % (2 * n):
        raise ValueError(f"the prime {p} is not 1 mod {2 * n}: no negacyclic NTT of size {n}")
    for g in range(2, 10_000):
        psi = pow(g, (p - 1) // (2 * n), p)
        if pow(psi, n, p) == p - 1:
            return psi
    raise ValueError(f"no primitive {2 * n}-th root of unity found modulo {p}")


@lru_cache(maxsize=4)
def _tables(primes: tuple[int, ...], n: int) -> np.ndarray:
    roots = np.array([primitive_root(p, n) for p in primes], dtype=np.uint64)
    return _core.bfv_tables(np.array(primes, dtype=np.uint64), roots, n)


class FusedProducts:
    """The primes and NTT tables of one ciphertext modulus, and the kernel calls."""

    def __init__(self, primes: np.ndarray, n: int) -> None:
        self.primes = np.ascontiguousarray(primes, dtype=np.uint64)
        self.n = n
        self.tabs = _tables(tuple(int(p) for p in self.primes), n)

    def to_ntt(self, words: np.ndarray) -> np.ndarray:
        """Ciphertexts (count, 2, L, n) in coefficient form into the kernel's NTT form,
        in place (the order is the kernel's own, not SEAL's)."""
        return _core.bfv_ntt(words, self.primes, self.tabs)

    def from_ntt(self, words: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_ntt`, in place."""
        return _core.bfv_ntt(words, self.primes, self.tabs, True)

    def group_sums(self, ct_ntt: np.ndarray, bins_by_feature: np.ndarray, lay: GroupLayout,
                   first: int, stop: int, nthreads: int) -> np.ndarray:
        """sum_b ct_b * P_{b,g} for plaintexts first..stop: (stop - first, 2, L, n),
        coefficient form, fully reduced. ``bins_by_feature`` is uint8 (features, rows)."""
        groups: Sequence[tuple[int, ...]] = lay.groups[first:stop]
        feat = np.array([f for g in groups for f in g], dtype=np.int64)
        gstart = np.zeros(len(groups) + 1, dtype=np.int64)
        gstart[1:] = np.cumsum([len(g) for g in groups])
        offset = np.array(lay.offsets, dtype=np.int64)
        slots = np.array(lay.slots, dtype=np.int64)
        return _core.bfv_grouped(ct_ntt, bins_by_feature, feat, gstart, offset, slots, lay.k,
                                 self.primes, self.tabs, nthreads)


def bins_by_feature(groups: np.ndarray) -> np.ndarray:
    """The owner's (rows, features) bin indices as uint8 (features, rows), C order; no copy
    for the Fortran-order uint8 arrays ml.binning makes."""
    if groups.size and int(groups.max()) > 255:
        raise ValueError("the HE label counts take at most 256 bins per feature")
    return np.ascontiguousarray(groups.T, dtype=np.uint8)
