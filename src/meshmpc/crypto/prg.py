"""The PRG every protocol draws randomness from: AES-128-CTR seeded by the OS.

``Prg()`` takes a fresh 16-byte seed from ``os.urandom``; ``Prg(seed)`` replays
a stream (tests, and two parties expanding a shared seed). Output block i is
AES_seed(i) with the counter a 128-bit little-endian integer; every request
consumes whole blocks, so a stream is fully defined by the sequence of calls.
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.aes import PATH_AUTO, Blocks
from meshmpc.crypto.errors import KernelInputError


class Prg:
    """AES-CTR pseudo-random generator filling numpy buffers in one C call."""

    def __init__(self, seed: bytes | None = None, path: int = PATH_AUTO) -> None:
        seed = os.urandom(16) if seed is None else bytes(seed)
        if len(seed) != 16:
            raise KernelInputError(f"PRG seed must be 16 bytes, got {len(seed)}")
        self._round_keys = _core.aes128_expand(seed)
        self._counter = 0
        self._path = path

    @property
    def counter(self) -> int:
        """Index of the next keystream block."""
        return self._counter

    def fill(self, out: np.ndarray) -> np.ndarray:
        """Overwrite the C-contiguous array ``out`` with fresh pseudo-random bytes."""
        if not out.flags.c_contiguous:
            raise KernelInputError("Prg.fill: output array must be C-contiguous")
        self._counter += _core.prg_fill(self._round_keys, self._counter, out, self._path)
        return out

    def random_bytes(self, n: int) -> bytes:
        return self.fill(np.empty(n, dtype=np.uint8)).tobytes()

    def blocks(self, n: int) -> Blocks:
        """n fresh 16-byte blocks as an (n, 16) uint8 array."""
        return self.fill(np.empty((n, 16), dtype=np.uint8))

    def uint64(self, n: int) -> npt.NDArray[np.uint64]:
        return self.fill(np.empty(n, dtype=np.uint64))

    def packed_bits(self, n: int) -> npt.NDArray[np.uint8]:
        """n random bits packed little-endian into ceil(n/8) bytes (unused bits zero)."""
        out = self.fill(np.empty((n + 7) // 8, dtype=np.uint8))
        if n % 8:
            out[-1] &= (1 << (n % 8)) - 1
        return out

    def bits(self, n: int) -> npt.NDArray[np.uint8]:
        """n random bits as a uint8 array of 0s and 1s."""
        return np.unpackbits(self.packed_bits(n), count=n, bitorder="little")

    def seed(self) -> bytes:
        """16 fresh bytes, e.g. to seed a child generator."""
        return self.random_bytes(16)

    def fork(self) -> Prg:
        """An independent generator seeded from this one."""
        return Prg(self.seed(), self._path)
