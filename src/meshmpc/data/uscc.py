"""Unified social credit codes (GB 32100-2015), checked and built in bulk.

A unified social credit code (统一社会信用代码) is 18 characters over a
31-character alphabet (the digits and the capitals without I, O, Z, S, V):

====  ===========================================================
pos   meaning
====  ===========================================================
1     registration authority (``9`` = market regulation, ...)
2     entity category (for authority 9: ``1`` enterprise, ``2``
      individual business, ``3`` farmers' cooperative)
3-8   administrative division code (GB/T 2260, six digits)
9-17  organisation code (GB 11714: eight characters + check)
18    check character
====  ===========================================================

The check character: with character values ``v_i`` (their index in the
alphabet) and weights ``w_i = 3^(i-1) mod 31`` for the first 17 positions,
``c = 31 - (sum w_i v_i mod 31)``, and ``c = 31`` maps to ``0``.

Every function here works on whole arrays (numpy / Arrow) so that checking or
generating ten million codes makes a handful of vectorised calls.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters a unified social credit code may contain, by value."""

WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
"""Position weights of the first 17 characters (GB 32100-2015, table 2)."""

ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
"""Weights of the organisation-code body (GB 11714-1997)."""

LENGTH = 18

_VALUE = np.full(256, -1, dtype=np.int64)
_VALUE[np.frombuffer(ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)
_GLYPH = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_ORG_VALUE = np.full(256, -1, dtype=np.int64)
_ORG_VALUE[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_ORG_VALUE[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)] = np.arange(10, 36)


def check_character(first17: str) -> str:
    """Return the check character for the first 17 characters of a code."""
    if len(first17) != 17:
        raise ValueError(f"need 17 characters, got {len(first17)}")
    codes = np.frombuffer(first17.encode("ascii"), dtype=np.uint8)[None, :]
    return chr(int(_check_values(codes)[0]))


def is_valid(code: str) -> bool:
    """True when ``code`` is a well-formed code with a correct check character."""
    return bool(valid_mask(pa.array([code], type=pa.string()))[0])


def _check_values(first17: np.ndarray) -> np.ndarray:
    """Check glyphs (uint8) for an ``n x 17`` uint8 matrix of valid characters."""
    values = _VALUE[first17]
    remainder = (values @ WEIGHTS) % 31
    return _GLYPH[(31 - remainder) % 31]


def _fixed_width_matrix(codes: pa.Array, width: int) -> np.ndarray:
    """Gather the bytes of a string array whose values all have ``width`` bytes."""
    codes = codes.cast(pa.binary()) if not pa.types.is_binary(codes.type) else codes
    if len(codes) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    buffers = codes.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[codes.offset : codes.offset + len(codes)]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0)
    return data[offsets[:, None] + np.arange(width)]


def valid_mask(codes: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean numpy mask: which entries are valid codes (nulls count as invalid)."""
    if isinstance(codes, pa.ChunkedArray):
        parts = [valid_mask(chunk) for chunk in codes.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    if pa.types.is_large_string(codes.type) or pa.types.is_large_binary(codes.type):
        codes = codes.cast(pa.binary())
    lengths = pc.binary_length(codes).fill_null(0).to_numpy(zero_copy_only=False)
    mask = lengths == LENGTH
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return mask
    matrix = _fixed_width_matrix(codes.take(pa.array(rows)), LENGTH)
    chars_ok = (_VALUE[matrix] >= 0).all(axis=1)
    check_ok = np.zeros(rows.size, dtype=bool)
    check_ok[chars_ok] = _check_values(matrix[chars_ok, :17]) == matrix[chars_ok, 17]
    mask[rows] = check_ok
    return mask


def organisation_check(body8: np.ndarray) -> np.ndarray:
    """GB 11714 check glyphs for an ``n x 8`` uint8 matrix of organisation-code bodies."""
    total = _ORG_VALUE[body8] @ ORG_WEIGHTS
    digit = 11 - total % 11
    return np.where(digit == 10, ord("X"), np.where(digit == 11, ord("0"), digit + ord("0")))


def build(
    authority: np.ndarray, category: np.ndarray, division: np.ndarray, serial: np.ndarray
) -> pa.StringArray:
    """Build valid codes in bulk.

    ``authority`` and ``category`` are uint8 glyph arrays (e.g. ``ord("9")``),
    ``division`` six-digit integers, ``serial`` integers in ``[0, 31**8)`` that
    become the organisation-code body (distinct serials give distinct codes).
    """
    n = len(serial)
    matrix = np.empty((n, LENGTH), dtype=np.uint8)
    matrix[:, 0] = authority
    matrix[:, 1] = category
    for pos in range(6):
        matrix[:, 2 + pos] = (division // 10 ** (5 - pos)) % 10 + ord("0")
    rest = np.asarray(serial, dtype=np.int64)
    for pos in range(7, -1, -1):
        matrix[:, 8 + pos] = _GLYPH[rest % 31]
        rest = rest // 31
    matrix[:, 16] = organisation_check(matrix[:, 8:16])
    matrix[:, 17] = _check_values(matrix[:, :17])
    offsets = np.arange(0, LENGTH * (n + 1), LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(matrix.tobytes()))
