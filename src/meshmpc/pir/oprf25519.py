"""The PIR table's OPRF: 2HashDH on Curve25519, bulk on the X25519 ladder.

F_k(x) = H2(x, u(K * H1(x))), where H1(x) is a uniform point of Curve25519
given by its u-coordinate (try and increment over SHA-512 outputs: the first
candidate below p whose curve equation has a square right-hand side), K is the
server's clamped 255-bit key (a multiple of 8, so K * H1(x) lies in the
prime-order subgroup whatever torsion H1(x) carries) and u() is the x-only
Montgomery coordinate; H2 is SHA-512 of the framed item and u, cut to 32 bytes.

Why: the server evaluates F on every record with its own key and no blinding
(PIR set-up), so it runs libsodium's X25519 ladder (``crypto_scalarmult``) on
u(H1(x)) directly: 36 us a point against ristretto255's 57, and the x-only hash
needs no point addition. A client blinds on edwards25519, where libsodium has
unclamped multiplication and a subgroup check: it maps u to the edwards point
Ed(u) (y = (u-1)/(u+1)), sends B = r * 8 * Ed(u); the server checks that B is a
canonical point of the prime-order subgroup and returns K * B; the client
multiplies by (8 r)^-1 mod L, getting K * H1(x) up to torsion, and converts it
back to u (``crypto_sign_ed25519_pk_to_curve25519``). Both paths give the same
u, so F is the same. Security argument: protocols/pir.md, "OPRF".
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.hashing import _flatten
from meshmpc.crypto.oprf import OprfError, as_points, threads
from meshmpc.crypto.sodium import library
from meshmpc.pir.flat import as_arrow

POINT_BYTES = 32
OUTPUT_BYTES = 32
FORMAT = "oprf-3:x25519:h1-sha512-try-increment:edwards25519-blind"
"""Names this OPRF (group and ladder, hash to curve, blinding group); PIR tables record it."""
_H1_DOMAIN = b"meshmpc-pir-oprf-h1-v3"
_H2_DOMAIN = b"meshmpc-pir-oprf-h2-v3"
FUNCTIONS = (  # mm_x25519_fns order (csrc/include/meshmpc/pir_oprf.h)
    "crypto_hash_sha512_init",
    "crypto_hash_sha512_update",
    "crypto_hash_sha512_final",
    "crypto_scalarmult_curve25519",
    "crypto_core_ed25519_add",
    "crypto_scalarmult_ed25519_noclamp",
    "crypto_core_ed25519_is_valid_point",
    "crypto_sign_ed25519_pk_to_curve25519",
    "crypto_core_ed25519_scalar_reduce",
    "crypto_core_ed25519_scalar_mul",
    "crypto_core_ed25519_scalar_invert",
)

Rows = npt.NDArray[np.uint8]


@cache
def addresses() -> np.ndarray:
    """The kernel function table: one uint64 address per entry of :data:`FUNCTIONS`."""
    lib = library()
    return np.array([ctypes.cast(getattr(lib, f), ctypes.c_void_p).value for f in FUNCTIONS],
                    dtype=np.uint64)


def _items(items: Sequence[bytes] | Any) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of byte items, or of an arrow array of strings/binaries."""
    items = as_arrow(items)
    if isinstance(items, np.ndarray) or hasattr(items, "buffers") \
            or hasattr(items, "combine_chunks"):
        return _flatten(items)
    return _flatten([bytes(x) for x in items])


def _check(bad: int, message: str) -> None:
    """Raise ``message`` (with ``{i}``: the failing index) when a kernel reports one."""
    if bad >= 0:
        raise OprfError("OPRF: " + message.format(i=bad))


def hash_to_u_many(items: Sequence[bytes] | Any) -> Rows:
    """H1 of every item: (n, 32) little-endian u-coordinates of Curve25519 points."""
    data, offsets = _items(items)
    out = np.empty((len(offsets) - 1, POINT_BYTES), np.uint8)
    _check(_core.x25519_h1_into(addresses(), _H1_DOMAIN, data, offsets, out, threads()),
           "no curve point found for item {i} (probability 2^-128)")
    return out


def clamp(raw: bytes) -> bytes:
    """An X25519 scalar as the ladder uses it: bits 0-2 and 255 clear, bit 254 set."""
    k = bytearray(raw)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


@dataclass(frozen=True)
class PirOprfKey:
    """The server's PRF key K (32 bytes, clamped); create with :meth:`generate`."""

    scalar: bytes

    def __post_init__(self) -> None:
        if len(self.scalar) != 32 or clamp(self.scalar) != self.scalar:
            raise OprfError("OPRF: the PIR key must be a clamped 32-byte X25519 scalar; "
                            "generate it with PirOprfKey.generate()")

    @classmethod
    def generate(cls) -> PirOprfKey:
        """A fresh key from OS randomness."""
        return cls(clamp(os.urandom(32)))

    def evaluate_rows(self, items: Sequence[bytes] | Any) -> Rows:
        """F_K(x) for the server's own items (no blinding), as (n, 32) rows, in C threads."""
        data, offsets = _items(items)
        out = np.empty((len(offsets) - 1, OUTPUT_BYTES), np.uint8)
        bad = _core.x25519_prf_into(addresses(), self.scalar, _H1_DOMAIN, _H2_DOMAIN, data,
                                    offsets, out, threads())
        _check(bad, "item {i} hashes to a low-order point (probability 2^-250)")
        return out

    def evaluate(self, items: Sequence[bytes]) -> list[bytes]:
        """F_K(x) for the server's own items."""
        return [r.tobytes() for r in self.evaluate_rows(items)]

    def evaluate_blinded_rows(self, points: Sequence[bytes] | Rows) -> Rows:
        """Server step: K * B for each blinded point B after checking B lies in the
        prime-order subgroup (a client's points are hostile input)."""
        pts = as_points(points, "blinded")
        out = np.empty_like(pts)
        k = np.frombuffer(self.scalar, np.uint8).reshape(1, 32)
        _check(_core.x25519_ed_mul_into(addresses(), k, pts, out, threads()),
               "blinded element {i} is not a point of the prime-order subgroup")
        return out

    def evaluate_blinded(self, points: Sequence[bytes] | Rows) -> list[bytes]:
        """Server step, as a list of 32-byte points."""
        return [r.tobytes() for r in self.evaluate_blinded_rows(points)]


@dataclass
class BlindedBatch:
    """Client state between :func:`blind` and :func:`finalize`."""

    items: list[bytes]
    unblind: Rows  # (8 r)^-1 mod L per item
    points: Rows  # r * 8 * Ed(H1(x)): what the client sends


def _scalars(n: int) -> tuple[Rows, Rows]:
    """n uniform non-zero blinding scalars r and their unblinding (8 r)^-1 mod L."""
    r, s = np.empty((n, 32), np.uint8), np.empty((n, 32), np.uint8)
    while True:
        wide = np.frombuffer(os.urandom(64 * n), np.uint8).reshape(n, 64)
        if _core.x25519_scalars_into(addresses(), wide, r, s) < 0:
            return r, s


def blind(items: Sequence[bytes]) -> BlindedBatch:
    """Client step 1: r * 8 * Ed(H1(x)) per item with fresh r; send ``batch.points``."""
    items = [bytes(x) for x in items]
    r, s = _scalars(len(items))
    out = np.empty((len(items), POINT_BYTES), np.uint8)
    if items:
        _check(_core.x25519_blind_into(addresses(), hash_to_u_many(items), r, out, threads()),
               "blinding of item {i} failed")
    return BlindedBatch(items, s, out)


def finalize(batch: BlindedBatch, evaluated: Sequence[bytes] | Rows) -> list[bytes]:
    """Client step 2: unblind the server's K * B into F_K(x) (checks each point)."""
    if len(evaluated) != len(batch.items):
        raise OprfError(
            f"OPRF: server answered {len(evaluated)} elements for {len(batch.items)} items")
    if not batch.items:
        return []
    pts = as_points(evaluated, "evaluated")
    data, offsets = _items(batch.items)
    out = np.empty((len(batch.items), OUTPUT_BYTES), np.uint8)
    _check(_core.x25519_finalize_into(addresses(), batch.unblind, pts, _H2_DOMAIN, data,
                                      offsets, out, threads()),
           "evaluated element {i} is not a point of the prime-order subgroup")
    return [r.tobytes() for r in out]
