"""Receiving a large message: a buffer that grows with the chunks that arrive.

A peer announces a large message's size in a small header and sends the
bytes as CHUNK records. The receiver never allocates the announced size up
front: the buffer starts at one chunk and, when full, is replaced by one up
to ``GROWTH`` times the bytes received so far. The new buffer is
uninitialised, so its untouched pages are not resident: resident memory
follows the data that arrived, and address space reserved stays within
``GROWTH`` times it. The large factor keeps copying small: a 64 MiB message
is copied once for its first 1 MiB, a 1 GiB message for its first 65 MiB.
Chunks are decrypted straight into the buffer; the finished buffer becomes
the array (viewed with the announced dtype and shape) without a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from meshmpc.net.errors import MalformedMessageError

GROWTH = 64
"""A buffer may reserve this many times the bytes received (up to the message size)."""


@dataclass
class LargeReceive:
    """One large message being received chunk by chunk."""

    tag: str
    kind: int
    total: int
    dtype: np.dtype | None = None
    shape: tuple[int, ...] = ()
    filled: int = 0
    buffer: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint8))

    def receive(self, size: int, decrypt_into: Callable[[memoryview], None],
                peer: str | None) -> bool:
        """Decrypt a chunk of ``size`` bytes into place; True once the message is complete."""
        if size <= 0 or self.filled + size > self.total:
            raise MalformedMessageError("chunk overruns its message", peer)
        end = self.filled + size
        if end > len(self.buffer):
            self._grow(end)
        with self.buffer.data as view:
            decrypt_into(view[self.filled : end])
        self.filled = end
        return end == self.total

    def _grow(self, needed: int) -> None:
        capacity = min(self.total, max(needed, GROWTH * self.filled))
        grown = np.empty(capacity, dtype=np.uint8)
        grown[: self.filled] = self.buffer[: self.filled]
        self.buffer = grown

    def array(self) -> np.ndarray:
        """The completed raw array, with the announced dtype and shape."""
        assert self.dtype is not None and self.filled == self.total == len(self.buffer)
        return self.buffer.view(self.dtype).reshape(self.shape)

    def blob(self) -> memoryview:
        """The completed packed blob's bytes."""
        assert self.filled == self.total == len(self.buffer)
        return self.buffer.data
