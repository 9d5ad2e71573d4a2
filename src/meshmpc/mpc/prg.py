"""Pseudo-random generator for protocol randomness: AES-128 in counter mode.

Keys come from the OS (``ctx.random_seed()`` / ``os.urandom``); the keystream is
produced by OpenSSL's AES-NI code through ``cryptography``. Every draw names a
64-bit ``nonce`` so that two parties holding the same key derive the same words
for the same operation, whatever else each of them drew before (the suites use
an operation counter that advances identically on every party).
"""

from __future__ import annotations

import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16


def fresh_key() -> bytes:
    """A new 16-byte PRG key from the OS."""
    return os.urandom(KEY_BYTES)


class Prg:
    """AES-128-CTR keystream under one key, addressed by (nonce, stream) pairs."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"PRG key must be {KEY_BYTES} bytes, got {len(key)}")
        self._algorithm = algorithms.AES(key)

    def words(self, count: int, nonce: int, stream: int = 0) -> np.ndarray:
        """``count`` uniformly random uint64 words for the given (nonce, stream)."""
        iv = (nonce & (2**64 - 1)).to_bytes(8, "little") + (stream & 0xFFFFFFFF).to_bytes(
            4, "little"
        ) + bytes(4)
        encryptor = Cipher(self._algorithm, modes.CTR(iv)).encryptor()
        out = np.empty(count, dtype=np.uint64)
        if count:
            encryptor.update_into(bytes(count * 8), memoryview(out).cast("B"))
        return out
