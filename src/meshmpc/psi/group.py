"""The prime-order group for ECDH PSI: X25519 (OpenSSL through ``cryptography``).

Items are mapped to the Montgomery u-line by u = BLAKE2b-256(digest) (the
hash-to-group of HFH99, modelled as a random oracle) and exponentiated with
X25519. X25519 clamps every scalar to a multiple of the cofactor 8 with bit 254
set, so x -> X25519(a, x) maps any u (on the curve or its twist) into a
prime-order subgroup, and X25519(a, X25519(b, u)) = X25519(b, X25519(a, u)):
the commutativity ECDH PSI needs. Both the curve (order 8p) and its twist
(order 4p') have large prime-order subgroups in which DDH is believed hard.

OpenSSL's X25519 holds the GIL in ``cryptography``, so batches run in worker
processes (:class:`GroupPool`) to use every core; one call handles a whole
chunk of points, never one Python call per point across processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

POINT_BYTES = 32
HASH_PERSON = b"meshmpc-psi-x255"

Points = npt.NDArray[np.uint8]


def new_scalar() -> bytes:
    """A fresh secret exponent from the OS (clamped by X25519 on use)."""
    return os.urandom(32)


def hash_to_points(digests: bytes) -> bytes:
    """u = BLAKE2b-256(digest) for each 16-byte digest (concatenated in, out)."""
    person = HASH_PERSON
    return b"".join(
        hashlib.blake2b(digests[i : i + 16], digest_size=32, person=person).digest()
        for i in range(0, len(digests), 16)
    )


def exponentiate(scalar: bytes, points: bytes) -> bytes:
    """X25519(scalar, u) for each 32-byte u (concatenated in, out). Runs in workers."""
    key = X25519PrivateKey.from_private_bytes(scalar)
    load = X25519PublicKey.from_public_bytes
    ex = key.exchange
    return b"".join(ex(load(points[i : i + 32])) for i in range(0, len(points), 32))


def hash_and_exponentiate(scalar: bytes, digests: bytes) -> bytes:
    """X25519(scalar, H(d)) for each 16-byte digest d."""
    return exponentiate(scalar, hash_to_points(digests))


def _watch_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the party process is gone (e.g. killed)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


INLINE_BYTES = 256 * 32
"""Chunks up to this size run in the party's own process: starting workers
costs more than a few hundred scalar multiplications."""


class GroupPool:
    """Runs chunked group operations in worker processes (or inline when workers=0).

    Workers start on the first chunk too large to run inline.
    """

    def __init__(self, workers: int | None = None,
                 on_points: Callable[[int], None] | None = None) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self._executor: Executor | None = None
        self.on_points = on_points
        """Told how many points each finished chunk produced (a progress display)."""

    def _pool(self) -> Executor:
        if self._executor is None:
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                 initializer=_watch_parent,
                                                 initargs=(os.getpid(),))
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
