"""Random band OKVS: a table of 16-byte elements that decodes each key to its value.

Paper: A. Bienstock, S. Patel, J. Y. Seo, K. Yeo, "Near-Optimal Oblivious
Key-Value Stores for Efficient PSI, PSU and Volume-Hiding Multi-Maps", USENIX
Security 2023 (eprint 2023/903), the random band matrix; used in place of
PaXoS as the OKVS of RR22 PSI (Raghuraman-Rindal, CCS 2022). All work is in
C (csrc/vole.c): hashing with two AES keys from a public seed, Gaussian
elimination on rows sorted by start, decoding by XOR over the band.

A key x (a pseudo-random 16-byte digest) has a 128-bit band starting at
start(x); decode(P, x) = sum of P[start(x) + k] over the set bits k of the
band, over GF(2^128) (XOR). ``table_size(n)`` columns (about 1.1 n + 128)
make encoding fail with small probability (measured: none in the tests'
runs); :func:`encode` then draws a new seed, at most ``MAX_ATTEMPTS`` times.
Columns without a pivot are zero: in RR22 the table travels masked by a
uniform VOLE vector, so the fill needs no randomness.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meshmpc import _core

BAND = 128
EXPANSION = 1.1
MAX_ATTEMPTS = 8
U8 = npt.NDArray[np.uint8]


class OkvsError(RuntimeError):
    """Encoding failed for every seed tried (duplicate keys with different values?)."""


def table_size(n: int) -> int:
    """Columns m of the table for n keys."""
    return int(np.ceil(EXPANSION * n)) + BAND


@dataclass(frozen=True)
class OkvsHash:
    """The public hashing of one table: seed and column count."""

    seed: bytes
    m: int

    def _keys(self) -> tuple[U8, U8]:
        raw = [hashlib.blake2b(self.seed + bytes([i]), digest_size=16,
                               person=b"meshmpc.okvs").digest() for i in range(2)]
        keys = np.frombuffer(b"".join(raw), np.uint8).reshape(2, 16)
        rk = _core.aes128_expand_many(keys)
        return rk[0], rk[1]

    def rows(self, keys: U8) -> tuple[npt.NDArray[np.uint64], U8]:
        """(start, band) of every 16-byte key."""
        keys = np.ascontiguousarray(keys, dtype=np.uint8).reshape(-1, 16)
        start = np.empty(len(keys), dtype=np.uint64)
        band = np.empty((len(keys), 16), dtype=np.uint8)
        k_start, k_band = self._keys()
        _core.okvs_hash_into(k_start, k_band, keys, self.m, start, band)
        return start, band

    def decode(self, table: U8, keys: U8) -> U8:
        """decode(table, x) for every key (n, 16)."""
        if table.shape != (self.m, 16):
            raise ValueError(f"OKVS table of shape {table.shape}, expected ({self.m}, 16)")
        start, band = self.rows(keys)
        out = np.empty((len(start), 16), dtype=np.uint8)
        _core.okvs_decode_into(start, band, np.ascontiguousarray(table), out,
                               os.cpu_count() or 1)
        return out


def encode(keys: U8, values: U8, m: int | None = None) -> tuple[OkvsHash, U8]:
    """A table with decode(table, keys[i]) == values[i]; a key may repeat with the same
    value (its equation is dependent and skipped), not with another value (OkvsError)."""
    keys = np.ascontiguousarray(keys, dtype=np.uint8).reshape(-1, 16)
    values = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, 16)
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys but {len(values)} values")
    m = table_size(len(keys)) if m is None else m
    table = np.empty((m, 16), dtype=np.uint8)
    for _ in range(MAX_ATTEMPTS):
        okvs = OkvsHash(os.urandom(16), m)
        start, band = okvs.rows(keys)
        if _core.okvs_encode_into(start, band, values, m, table):
            return okvs, table
    raise OkvsError(f"OKVS encoding of {len(keys)} keys into {m} columns failed "
                    f"{MAX_ATTEMPTS} times (duplicate keys?)")
