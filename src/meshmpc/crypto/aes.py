"""AES-128 block encryption in batches (AES-NI / VAES, chosen at run time).

``Aes128(key).encrypt(blocks)`` encrypts an (n, 16) uint8 array in one C call.
``FIXED_KEY_AES`` is the public fixed-key permutation pi used by the
correlation-robust hashes (:mod:`meshmpc.crypto.hashing`) and by garbling:
its key is SHA-256("meshmpc fixed-key AES v1")[:16], a nothing-up-my-sleeve
constant every party derives the same way.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.errors import KernelInputError

Blocks = npt.NDArray[np.uint8]

PATH_AUTO = _core.PATH_AUTO
PATH_PORTABLE = _core.PATH_PORTABLE
PATH_AESNI = _core.PATH_AESNI
PATH_VAES = _core.PATH_VAES


def available_paths() -> list[int]:
    """Kernel paths this CPU can run: always portable, then AES-NI and VAES if present."""
    return list(range(_core.best_path() + 1))


def as_blocks(data: npt.ArrayLike, name: str = "blocks") -> Blocks:
    """View ``data`` as a C-contiguous (n, 16) uint8 array (copying only if needed)."""
    arr = np.ascontiguousarray(data)
    if arr.nbytes % 16:
        raise KernelInputError(f"{name}: {arr.nbytes} bytes is not a whole number of blocks")
    return arr.view(np.uint8).reshape(-1, 16)


class Aes128:
    """AES-128 under one key, encrypting whole batches of blocks per call."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise KernelInputError(f"AES-128 key must be 16 bytes, got {len(key)}")
        self.round_keys: npt.NDArray[np.uint8] = _core.aes128_expand(key)

    def encrypt(self, blocks: npt.ArrayLike, path: int = PATH_AUTO) -> Blocks:
        """AES_k of every 16-byte block of ``blocks``; returns an (n, 16) uint8 array."""
        src = as_blocks(blocks)
        out = np.empty_like(src)
        _core.aes128_ecb_into(self.round_keys, src, out, path)
        return out

    def encrypt_into(self, blocks: np.ndarray, out: np.ndarray, path: int = PATH_AUTO) -> None:
        """Like :meth:`encrypt` but writes into ``out`` (may be ``blocks`` itself)."""
        _core.aes128_ecb_into(self.round_keys, blocks, out, path)

    def counter_blocks(self, start: int, n: int, path: int = PATH_AUTO) -> Blocks:
        """AES_k(start), ..., AES_k(start + n - 1), counters as 128-bit little-endian."""
        out = np.empty((n, 16), dtype=np.uint8)
        _core.aes128_ctr_into(self.round_keys, start, out, path)
        return out


FIXED_KEY = hashlib.sha256(b"meshmpc fixed-key AES v1").digest()[:16]
FIXED_KEY_AES = Aes128(FIXED_KEY)
