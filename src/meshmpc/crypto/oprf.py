"""Oblivious PRF on ristretto255 (2HashDH), batch API over C kernels.

F_k(x) = H2(x, k * H1(x)) where H1 hashes to the group the way RFC 9380 /
RFC 9496 do: SHA-512 of the framed item gives 64 bytes, libsodium's
``crypto_core_ristretto255_from_hash`` maps each 32-byte half to the group
(Elligator) and adds the two points, so H1 is a random-oracle-quality hash to
the prime-order group (a single map, as before the hardening, is not). H2 is
SHA-512 of the item and the point, truncated to 32 bytes. The client blinds
H1(x) with a random scalar r, the server multiplies by its key k, the client
removes r with r^-1. Security (Jarecki-Kiayias-Krawczyk-Xu, EuroS&P 2016):
under one-more-gap-DH in the random oracle model the client learns F_k on its
own inputs only and the server learns nothing about them (each blinded point
is uniform in the group).

ristretto255 encodes the prime-order group itself, so a decoded point needs
no subgroup check (the Ed25519 multiplication used before re-checked it on
every call, half of the PIR set-up time). Every group operation is a
libsodium call made from C (csrc/oprf.c) over whole batches on all cores.
Costs: one hash-to-group and two scalar multiplications per item for the
client, one for the server, 32 bytes each way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.hashing import _flatten
from meshmpc.crypto.sodium import addresses
from meshmpc.errors import MeshMPCError

POINT_BYTES = 32
OUTPUT_BYTES = 32
FORMAT = "oprf-2:ristretto255:sha512-from-hash"
"""Names this OPRF (group, hash to group, output hash). Tables built from its
outputs (PIR databases, unbalanced-PSI caches) record it, so a table from
another OPRF is rejected instead of misread."""
_H1_DOMAIN = b"meshmpc-oprf-h1-v2"
_H2_DOMAIN = b"meshmpc-oprf-h2-v2"

Rows = npt.NDArray[np.uint8]


class OprfError(MeshMPCError, ValueError):
    """An OPRF message is malformed (wrong length, not a valid group element)."""


def threads() -> int:
    """Threads for the batch kernels: every core."""
    return os.cpu_count() or 1


def random_scalars(n: int, inverses: bool = False) -> tuple[Rows, Rows | None]:
    """n uniform non-zero scalars from OS randomness (and their inverses)."""
    fns = addresses()
    scalars = np.empty((n, 32), np.uint8)
    inv = np.empty((n, 32), np.uint8) if inverses else None
    while True:
        wide = np.frombuffer(os.urandom(64 * n), np.uint8).reshape(n, 64)
        if _core.ristretto_scalars_into(fns, wide, scalars, inv) < 0:
            return scalars, inv


def random_scalar() -> bytes:
    """A uniform non-zero scalar mod the group order, from OS randomness."""
    return random_scalars(1)[0].tobytes()


def _items(items: Sequence[bytes] | Rows | Any) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of the items: a 2-D uint8 array, an arrow (Chunked)Array of
    strings or binaries (read from its buffers, as :func:`~meshmpc.crypto.hashing.item_hash`
    does: a per-item ``bytes(x)`` of an arrow scalar fails), or a sequence of bytes."""
    if isinstance(items, np.ndarray) or hasattr(items, "buffers") \
            or hasattr(items, "combine_chunks"):
        return _flatten(items)
    return _flatten([bytes(x) for x in items])


def hash_to_group_many(items: Sequence[bytes] | Rows) -> Rows:
    """H1 of every item: (n, 32) encoded group elements."""
    data, offsets = _items(items)
    out = np.empty((len(offsets) - 1, POINT_BYTES), np.uint8)
    _core.oprf_h1_into(addresses(), _H1_DOMAIN, data, offsets, out, threads())
    return out


def hash_to_group(item: bytes) -> bytes:
    """H1: bytes to an element of the prime-order group (two maps, added)."""
    return hash_to_group_many([item])[0].tobytes()


def finalize_many(items: Sequence[bytes] | Rows, points: Rows) -> Rows:
    """H2 of every item with its point k * H1(item): the PRF outputs (n, 32)."""
    data, offsets = _items(items)
    out = np.empty((len(offsets) - 1, OUTPUT_BYTES), np.uint8)
    _core.oprf_h2_into(addresses(), _H2_DOMAIN, data, offsets, np.ascontiguousarray(points),
                       out, threads())
    return out


def finalize_output(item: bytes, point: bytes) -> bytes:
    """H2: the PRF output from the item and k * H1(item)."""
    return finalize_many([item], np.frombuffer(point, np.uint8).reshape(1, 32))[0].tobytes()


def as_points(points: Sequence[bytes] | Rows, who: str) -> Rows:
    """Received elements as an (n, 32) array; names the first one of the wrong length."""
    if isinstance(points, np.ndarray):
        if points.dtype != np.uint8 or points.ndim != 2 or points.shape[1] != POINT_BYTES:
            raise OprfError(f"OPRF: {who} elements are not rows of {POINT_BYTES} bytes")
        return np.ascontiguousarray(points)
    for i, p in enumerate(points):
        if not isinstance(p, bytes | bytearray) or len(p) != POINT_BYTES:
            raise OprfError(f"OPRF: {who} element {i} is not {POINT_BYTES} bytes")
    return np.frombuffer(b"".join(points), np.uint8).reshape(-1, POINT_BYTES)


def multiply(scalars: Rows, points: Rows, who: str) -> Rows:
    """s_i * P_i (or one s for all); libsodium rejects invalid encodings and the identity."""
    out = np.empty_like(points)
    bad = _core.ristretto_mul_into(addresses(), scalars, points, out, threads())
    if bad >= 0:
        raise OprfError(f"OPRF: {who} element {bad} is not a valid group element")
    return out


@dataclass(frozen=True)
class OprfKey:
    """The server's PRF key k (a scalar); create with :meth:`generate`."""

    scalar: bytes

    @classmethod
    def generate(cls) -> OprfKey:
        return cls(random_scalar())

    def _k(self) -> Rows:
        return np.frombuffer(self.scalar, np.uint8).reshape(1, 32)

    def evaluate_blinded_rows(self, points: Sequence[bytes] | Rows) -> Rows:
        """Server step: k * P for each blinded point P sent by a client, as rows."""
        return multiply(self._k(), as_points(points, "blinded"), "blinded")

    def evaluate_blinded(self, points: Sequence[bytes] | Rows) -> list[bytes]:
        """Server step: k * P for each blinded point P sent by a client."""
        return [r.tobytes() for r in self.evaluate_blinded_rows(points)]

    def evaluate_rows(self, items: Sequence[bytes] | Rows) -> Rows:
        """F_k(x) for the server's own items (no blinding needed), as (n, 32) rows."""
        h1 = hash_to_group_many(items)
        return finalize_many(items, multiply(self._k(), h1, "hashed"))

    def evaluate(self, items: Sequence[bytes]) -> list[bytes]:
        """F_k(x) for the server's own items."""
        return [r.tobytes() for r in self.evaluate_rows(items)]


@dataclass
class BlindedBatch:
    """Client state between :func:`blind` and :func:`finalize`."""

    items: list[bytes]
    inverses: Rows
    points: list[bytes]


def blind(items: Sequence[bytes]) -> BlindedBatch:
    """Client step 1: r * H1(x) per item, with fresh r; send ``batch.points``."""
    items = [bytes(x) for x in items]
    scalars, inverses = random_scalars(len(items), inverses=True)
    assert inverses is not None
    points = multiply(scalars, hash_to_group_many(items), "hashed") if items else \
        np.empty((0, 32), np.uint8)
    return BlindedBatch(items, inverses, [r.tobytes() for r in points])


def finalize(batch: BlindedBatch, evaluated: Sequence[bytes] | Rows) -> list[bytes]:
    """Client step 2: unblind the server's k * r * H1(x) into F_k(x)."""
    if len(evaluated) != len(batch.items):
        raise OprfError(
            f"OPRF: server answered {len(evaluated)} elements for {len(batch.items)} items"
        )
    if not batch.items:
        return []
    unblinded = multiply(batch.inverses, as_points(evaluated, "evaluated"), "evaluated")
    return [r.tobytes() for r in finalize_many(batch.items, unblinded)]


def evaluate_many(key: OprfKey, items: Sequence[bytes], workers: int | None = None) -> list[bytes]:
    """F_k(x) for many server items (threads over every core; ``workers`` is ignored)."""
    return key.evaluate(items)
