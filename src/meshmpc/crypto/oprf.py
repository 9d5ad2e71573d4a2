"""Oblivious PRF on libsodium's prime-order Ed25519 group (2HashDH), batch API.

F_k(x) = H2(x, k * H1(x)) where H1 maps bytes to the prime-order subgroup
(SHA-512 then Elligator 2 via ``crypto_core_ed25519_from_uniform``) and H2 is
SHA-512 truncated to 32 bytes. The client blinds H1(x) with a random scalar r,
the server multiplies by its key k, the client removes r with r^-1. Security
(Jarecki-Kiayias-Krawczyk-Xu, "Highly-efficient and composable password-
protected secret sharing", EuroS&P 2016): under one-more-gap-DH in the random
oracle model the client learns F_k on its own inputs only and the server learns
nothing about them (each blinded point is uniform in the group).

Costs: one Elligator map and two variable-base scalar multiplications per item
for the client, one for the server, 32 bytes each way. Every group operation is
one PyNaCl call (libsodium has no batch entry point), so large batches are
spread over worker processes with :func:`evaluate_many`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TypeVar

from nacl import bindings as sodium
from nacl.exceptions import RuntimeError as SodiumRuntimeError

from meshmpc.errors import MeshMPCError

POINT_BYTES = 32
OUTPUT_BYTES = 32
_H1_DOMAIN = b"meshmpc-oprf-h1-v1"
_H2_DOMAIN = b"meshmpc-oprf-h2-v1"
_PARALLEL_MIN = 20_000  # below this, worker start-up costs more than it saves

T = TypeVar("T")


class OprfError(MeshMPCError, ValueError):
    """An OPRF message is malformed (wrong length, not a valid group element)."""


def random_scalar() -> bytes:
    """A uniform non-zero scalar mod the group order, from OS randomness."""
    while True:
        s = sodium.crypto_core_ed25519_scalar_reduce(os.urandom(64))
        if any(s):
            return bytes(s)


def _framed(domain: bytes, item: bytes) -> bytes:
    return domain + len(item).to_bytes(8, "little") + item


def hash_to_group(item: bytes) -> bytes:
    """H1: bytes to a point of the prime-order subgroup (Elligator 2)."""
    digest = hashlib.sha512(_framed(_H1_DOMAIN, item)).digest()[:32]
    return bytes(sodium.crypto_core_ed25519_from_uniform(digest))


def finalize_output(item: bytes, point: bytes) -> bytes:
    """H2: the PRF output from the item and k * H1(item)."""
    return hashlib.sha512(_framed(_H2_DOMAIN, item) + point).digest()[:OUTPUT_BYTES]


def _mul(scalar: bytes, point: bytes, who: str, index: int) -> bytes:
    """k * P; libsodium rejects non-canonical, small-order and off-subgroup P."""
    if not isinstance(point, bytes | bytearray) or len(point) != POINT_BYTES:
        raise OprfError(f"OPRF: {who} element {index} is not {POINT_BYTES} bytes")
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(scalar, bytes(point)))
    except SodiumRuntimeError as exc:
        raise OprfError(f"OPRF: {who} element {index} is not a valid group element") from exc


@dataclass(frozen=True)
class OprfKey:
    """The server's PRF key k (a scalar); create with :meth:`generate`."""

    scalar: bytes

    @classmethod
    def generate(cls) -> OprfKey:
        return cls(random_scalar())

    def evaluate_blinded(self, points: Sequence[bytes]) -> list[bytes]:
        """Server step: k * P for each blinded point P sent by a client."""
        return [_mul(self.scalar, p, "blinded", i) for i, p in enumerate(points)]

    def evaluate(self, items: Sequence[bytes]) -> list[bytes]:
        """F_k(x) for the server's own items (no blinding needed)."""
        return [
            finalize_output(x, bytes(sodium.crypto_scalarmult_ed25519_noclamp(
                self.scalar, hash_to_group(x))))
            for x in items
        ]


@dataclass
class BlindedBatch:
    """Client state between :func:`blind` and :func:`finalize`."""

    items: list[bytes]
    inverses: list[bytes]
    points: list[bytes]


def blind(items: Sequence[bytes]) -> BlindedBatch:
    """Client step 1: r * H1(x) per item, with fresh r; send ``batch.points``."""
    items = [bytes(x) for x in items]
    scalars = [random_scalar() for _ in items]
    points = [
        bytes(sodium.crypto_scalarmult_ed25519_noclamp(r, hash_to_group(x)))
        for r, x in zip(scalars, items, strict=True)
    ]
    inverses = [bytes(sodium.crypto_core_ed25519_scalar_invert(r)) for r in scalars]
    return BlindedBatch(items, inverses, points)


def finalize(batch: BlindedBatch, evaluated: Sequence[bytes]) -> list[bytes]:
    """Client step 2: unblind the server's k * r * H1(x) into F_k(x)."""
    if len(evaluated) != len(batch.items):
        raise OprfError(
            f"OPRF: server answered {len(evaluated)} elements for {len(batch.items)} items"
        )
    return [
        finalize_output(x, _mul(inv, q, "evaluated", i))
        for i, (x, inv, q) in enumerate(zip(batch.items, batch.inverses, evaluated, strict=True))
    ]


def _chunks(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    size = max(1, -(-len(items) // parts))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _evaluate_chunk(scalar: bytes, items: Sequence[bytes]) -> list[bytes]:
    return OprfKey(scalar).evaluate(items)


def parallel_map(
    fn: Callable[..., list[T]], head: tuple[object, ...], items: Sequence[object],
    workers: int | None = None,
) -> list[T]:
    """``fn(*head, chunk)`` over chunks of ``items`` in worker processes, in order.

    ``fn`` must be a module-level function (workers are spawned, not forked, so
    this is safe inside a running event loop or a threaded program).
    """
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(items) < _PARALLEL_MIN:
        return fn(*head, items)
    parts = _chunks(items, workers * 4)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *head, part) for part in parts]
        out: list[T] = []
        for f in futures:
            out.extend(f.result())
    return out


def evaluate_many(key: OprfKey, items: Sequence[bytes], workers: int | None = None) -> list[bytes]:
    """F_k(x) for many server items, spread over ``workers`` processes."""
    return parallel_map(_evaluate_chunk, (key.scalar,), list(items), workers)
