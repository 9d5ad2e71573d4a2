"""libsodium's ristretto255 functions for the C kernels, from the system library.

PyNaCl's bundled libsodium has no ristretto255, so the OPRF kernels
(csrc/oprf.c) call the system libsodium (>= 1.0.18) through function
addresses looked up here once, as the BLAKE2b kernels call PyNaCl's. No curve
code of our own: every group operation is one libsodium call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import numpy as np

from meshmpc.errors import MeshMPCError

# mm_sodium_fns order (csrc/include/meshmpc/oprf.h)
FUNCTIONS = (
    "crypto_hash_sha512_init",
    "crypto_hash_sha512_update",
    "crypto_hash_sha512_final",
    "crypto_core_ristretto255_from_hash",
    "crypto_scalarmult_ristretto255",
    "crypto_core_ristretto255_scalar_reduce",
    "crypto_core_ristretto255_scalar_invert",
    "crypto_generichash_blake2b_salt_personal",
)
_CANDIDATES = ("libsodium.so.26", "libsodium.so.23", "libsodium.so", "libsodium.dylib")
_SHA512_STATE_MAX = 512


class SodiumUnavailableError(MeshMPCError, RuntimeError):
    """The system libsodium with ristretto255 (>= 1.0.18) cannot be loaded."""


def _open() -> ctypes.CDLL:
    names = [n for n in (ctypes.util.find_library("sodium"),) if n] + list(_CANDIDATES)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if all(hasattr(lib, f) for f in FUNCTIONS):
            return lib
    raise SodiumUnavailableError(
        "the OPRF (PIR, unbalanced PSI) needs the system libsodium >= 1.0.18 with "
        "ristretto255; install it (Debian/Ubuntu: apt-get install libsodium23)")


@cache
def library() -> ctypes.CDLL:
    """The loaded, initialised system libsodium."""
    lib = _open()
    if lib.sodium_init() < 0:
        raise SodiumUnavailableError("libsodium failed to initialise (sodium_init)")
    lib.crypto_hash_sha512_statebytes.restype = ctypes.c_size_t
    if lib.crypto_hash_sha512_statebytes() > _SHA512_STATE_MAX:
        raise SodiumUnavailableError("libsodium's SHA-512 state is larger than the kernels allow")
    return lib


@cache
def addresses() -> np.ndarray:
    """The kernel function table: one uint64 address per entry of :data:`FUNCTIONS`."""
    lib = library()
    return np.array([ctypes.cast(getattr(lib, f), ctypes.c_void_p).value for f in FUNCTIONS],
                    dtype=np.uint64)


def is_valid_point(point: bytes) -> bool:
    """A canonical encoding of a ristretto255 element (the identity included)."""
    if len(point) != 32:
        return False
    return bool(library().crypto_core_ristretto255_is_valid_point(point) == 1)
