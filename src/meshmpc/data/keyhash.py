"""Duplicate-key detection in bounded memory: 128-bit row fingerprints, then exact checks.

Keeping ten million key strings and hashing them in one table costs gigabytes;
a 64-bit fingerprint (a polynomial hash of the bytes and the length, finished
with the splitmix64 mixer) costs 8 bytes a row. Rows whose fingerprints repeat
are only *candidates*: the caller re-reads their key values and compares the
strings, so a collision can never report a false duplicate (and at 10^7 rows
a chance collision, ~n^2/2^65, is rare enough not to cost a second pass).

This is not a cryptographic use (nothing secret, no adversary gains by a
collision beyond a slower second pass); numpy arithmetic wraps mod 2^64.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.keynorm import KeyRule, normalise

_MULTIPLIER = np.uint64(0x100000001B3)
_LENGTH_SALT = np.uint64(0xD6E8FEB86659FD93)
_SEPARATOR = "\x1f"


def key_strings(parts: list[pa.Array], rule: KeyRule | None = None) -> pa.Array:
    """One string per row for a (possibly composite) key; null if any part is null.

    With ``rule``, each part is normalised first (:mod:`meshmpc.data.keynorm`), so
    that keys PSI would treat as equal count as duplicates here too.
    """
    texts = [p.cast(pa.string()) if rule is None else normalise(p, rule) for p in parts]
    if len(texts) == 1:
        return texts[0]
    return pc.binary_join_element_wise(*texts, _SEPARATOR)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole word."""
    z = values + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _polynomial(data: np.ndarray, offsets: np.ndarray, multiplier: np.uint64) -> np.ndarray:
    """sum(byte_j * m^(len-1-j)) mod 2^64 for each string, vectorised over the buffer."""
    lengths = np.diff(offsets)
    n = len(lengths)
    hashes = np.zeros(n, dtype=np.uint64)
    if data.size == 0:
        return hashes
    powers = np.cumprod(np.full(int(lengths.max()), multiplier, dtype=np.uint64))
    powers = np.concatenate([np.ones(1, np.uint64), powers[:-1]])
    ends = np.repeat(offsets[1:], lengths)
    terms = (data.astype(np.uint64) + np.uint64(1)) * powers[ends - 1 - np.arange(data.size)]
    nonempty = np.flatnonzero(lengths > 0)
    hashes[nonempty] = np.add.reduceat(terms, offsets[:-1][nonempty])
    return hashes


def fingerprints(keys: pa.Array) -> np.ndarray:
    """64-bit fingerprints of a string array (nulls get arbitrary values)."""
    binary = keys.cast(pa.binary())
    n = len(binary)
    buffers = binary.buffers()
    offsets = np.frombuffer(buffers[1], np.int32)[binary.offset : binary.offset + n + 1]
    offsets = offsets.astype(np.int64)
    data = (np.frombuffer(buffers[2], np.uint8)[offsets[0] : offsets[-1]]
            if buffers[2] is not None else np.zeros(0, np.uint8))
    offsets = offsets - offsets[0]
    length = np.diff(offsets).astype(np.uint64)
    return _mix(_polynomial(data, offsets, _MULTIPLIER) ^ (length * _LENGTH_SALT))


def repeated_rows(prints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Sorted 0-based rows whose fingerprint occurs more than once among valid rows."""
    prints = np.where(valid, prints, np.uint64(0))
    ordered = np.sort(prints[valid])
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if repeats.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.isin(prints, np.unique(repeats)) & valid)
