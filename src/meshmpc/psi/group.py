"""The prime-order group for ECDH PSI: X25519 (RFC 7748) in C kernels.

Items are mapped to the Montgomery u-line by u = BLAKE2b-256(digest) (the
hash-to-group of HFH99, modelled as a random oracle) and exponentiated with
X25519. X25519 clamps every scalar to a multiple of the cofactor 8 with bit 254
set, so x -> X25519(a, x) maps any u (on the curve or its twist) into a
prime-order subgroup, and X25519(a, X25519(b, u)) = X25519(b, X25519(a, u)):
the commutativity ECDH PSI needs. Both the curve (order 8p) and its twist
(order 4p') have large prime-order subgroups in which DDH is believed hard.

The scalar multiplications run in csrc/ecdh_x25519.c, on Intel's 8-way
multi-buffer X25519 where the CPU has AVX-512 IFMA, else on libsodium
(:mod:`meshmpc.psi.x25519` chooses; both give the same bytes). A whole chunk
is one C call that releases the GIL, so :class:`GroupPool` spreads chunks over
threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from meshmpc.psi.x25519 import x25519_batch

POINT_BYTES = 32
HASH_PERSON = b"meshmpc-psi-x255"

Points = npt.NDArray[np.uint8]


def new_scalar() -> bytes:
    """A fresh secret exponent from the OS (clamped by X25519 on use)."""
    return os.urandom(32)


def hash_to_points(digests: bytes) -> bytes:
    """u = BLAKE2b-256(digest, person) for each 16-byte digest (concatenated in, out).

    The kernels hash in C (libsodium); this is the same map in Python, for
    tests and transcript checks.
    """
    return b"".join(
        hashlib.blake2b(digests[i : i + 16], digest_size=32, person=HASH_PERSON).digest()
        for i in range(0, len(digests), 16)
    )


def exponentiate(scalar: bytes, points: bytes, path: str | None = None) -> bytes:
    """X25519(scalar, u) for each 32-byte u (concatenated in, out).

    ``path`` forces "libsodium" or "mb8-ifma" (tests); default: the run-time choice.
    """
    return x25519_batch(scalar, points, None, path)


def hash_and_exponentiate(scalar: bytes, digests: bytes, path: str | None = None) -> bytes:
    """X25519(scalar, H(d)) for each 16-byte digest d, H(d) = BLAKE2b-256(d, person)."""
    return x25519_batch(scalar, digests, HASH_PERSON, path)


INLINE_BYTES = 256 * 32
"""Chunks up to this size run on the event loop's thread: a hand-off to a
worker costs more than a few hundred scalar multiplications would gain."""


class GroupPool:
    """Runs chunked group operations on worker threads (or inline when workers=0).

    Each chunk is one C call without the GIL, so ``workers`` threads keep as
    many cores busy; they start on the first chunk too large to run inline.
    """

    def __init__(self, workers: int | None = None,
                 on_points: Callable[[int], None] | None = None) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self._executor: Executor | None = None
        self.on_points = on_points
        """Told how many points each finished chunk produced (a progress display)."""

    def _pool(self) -> Executor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix="meshmpc-x25519")
        return self._executor

    async def run(self, fn_name: str, scalar: bytes, data: bytes) -> bytes:
        """Apply ``exponentiate`` or ``hash_and_exponentiate`` to one chunk."""
        fn = {"exp": exponentiate, "hash_exp": hash_and_exponentiate}[fn_name]
        if self.workers <= 0 or len(data) <= INLINE_BYTES:
            out = fn(scalar, data)
        else:
            loop = asyncio.get_running_loop()
            out = await loop.run_in_executor(self._pool(), fn, scalar, data)
        if self.on_points is not None:
            self.on_points(len(out) // POINT_BYTES)
        return out

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> GroupPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_rows(data: bytes, width: int) -> Points:
    """View concatenated fixed-width values as an (n, width) uint8 array."""
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
