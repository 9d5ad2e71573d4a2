"""Pseudo-random generator for protocol randomness: AES-128 in counter mode.

Keys come from the OS (``os.urandom``); the keystream is the C core's AES-CTR
kernel (``meshmpc._core.prg_fill``, AES-NI/VAES chosen at run time). Every draw
names a ``nonce`` and a ``stream`` so that two parties holding the same key
derive the same words for the same operation whatever else each drew before
(the suites use an operation counter that advances identically on every party).

Draw (nonce, stream) starts at block ((nonce mod 2^24) << 40) | (stream << 32):
2^32 blocks (64 GiB) per draw, 256 streams per nonce. Every 2^24 nonces the key
moves to the next *epoch* key AES_k(epoch), so no block is ever used twice.
"""

from __future__ import annotations

import os

import numpy as np

from meshmpc import _core

KEY_BYTES = 16
_NONCE_BITS = 24
_STREAMS = 256


def fresh_key() -> bytes:
    """A new 16-byte PRG key from the OS."""
    return os.urandom(KEY_BYTES)


class Prg:
    """AES-128-CTR keystream under one key, addressed by (nonce, stream) pairs."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"PRG key must be {KEY_BYTES} bytes, got {len(key)}")
        self._master = _core.aes128_expand(bytes(key))
        self._epochs: dict[int, np.ndarray] = {0: self._master}

    def _round_keys(self, epoch: int) -> np.ndarray:
        if epoch not in self._epochs:
            block = np.zeros(16, dtype=np.uint8)
            block[:8] = np.frombuffer(epoch.to_bytes(8, "little"), dtype=np.uint8)
            block[8] = 0xE9  # domain separation from the keystream blocks of epoch 0
            key = np.empty(16, dtype=np.uint8)
            _core.aes128_ecb_into(self._master, block, key)
            self._epochs[epoch] = _core.aes128_expand(key.tobytes())
        return self._epochs[epoch]

    def words(self, count: int, nonce: int, stream: int = 0) -> np.ndarray:
        """``count`` uniformly random uint64 words for the given (nonce, stream)."""
        if not 0 <= stream < _STREAMS:
            raise ValueError(f"PRG stream must be below {_STREAMS}")
        if count * 8 > 16 << 32:
            raise ValueError("one PRG draw is limited to 64 GiB")
        epoch, slot = divmod(nonce, 1 << _NONCE_BITS)
        counter = (slot << 40) | (stream << 32)
        out = np.empty(count, dtype=np.uint64)
        if count:
            _core.prg_fill(self._round_keys(epoch), counter, out)
        return out
