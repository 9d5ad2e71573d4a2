"""The OPRF's group and hash to group (hardening defect 8): RFC 9496 ristretto255.

H1 must be a random-oracle-quality hash to the group: SHA-512 to 64 bytes,
each half mapped (Elligator) and the two points added, which is what
``crypto_core_ristretto255_from_hash`` does. The known answer comes from
RFC 9496 (appendix A.3, hash-to-group vectors).
"""

from __future__ import annotations

import ctypes
import hashlib

import numpy as np
import pytest

from meshmpc.crypto import oprf
from meshmpc.crypto.sodium import is_valid_point, library

RFC9496_FROM_HASH = [
    (b"Ristretto is traditionally a short shot of espresso coffee",
     "3066f82a1a747d45120d1740f14358531a8f04bbffe6a819f86dfe50f44a0a46"),
]


@pytest.mark.parametrize("message,expected", RFC9496_FROM_HASH)
def test_from_hash_known_answer(message: bytes, expected: str) -> None:
    out = ctypes.create_string_buffer(32)
    library().crypto_core_ristretto255_from_hash(out, hashlib.sha512(message).digest())
    assert out.raw.hex() == expected


def test_h1_is_from_hash_of_the_framed_sha512() -> None:
    item = b"91310000000000042"
    framed = b"meshmpc-oprf-h1-v2" + len(item).to_bytes(8, "little") + item
    out = ctypes.create_string_buffer(32)
    library().crypto_core_ristretto255_from_hash(out, hashlib.sha512(framed).digest())
    assert oprf.hash_to_group(item) == out.raw
    assert is_valid_point(out.raw)


def test_h1_uses_both_halves_of_the_hash() -> None:
    """Changing only the second 32 bytes changes the point (a single map would not)."""
    h = bytearray(hashlib.sha512(b"x").digest())
    a, b = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    library().crypto_core_ristretto255_from_hash(a, bytes(h))
    h[40] ^= 1
    library().crypto_core_ristretto255_from_hash(b, bytes(h))
    assert a.raw != b.raw


def test_scalars_are_nonzero_and_inverses_invert() -> None:
    s, inv = oprf.random_scalars(64, inverses=True)
    assert inv is not None and not np.any(np.all(s == 0, axis=1))
    p = oprf.hash_to_group_many([b"p"])
    for i in range(0, 64, 9):
        q = oprf.multiply(s[i : i + 1], p, "t")
        assert np.array_equal(oprf.multiply(inv[i : i + 1], q, "t"), p)
