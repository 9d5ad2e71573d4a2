"""Which X25519 runs ECDH PSI: Intel's multi-buffer library or libsodium, chosen at run time.

Two implementations of the same function (RFC 7748 X25519) sit behind
:func:`x25519_batch` (C kernels in csrc/ecdh_x25519.c):

- ``"mb8-ifma"``: ``mbx_x25519_mb8`` from Intel's crypto_mb (``libcrypto_mb``
  in the ``ipp-crypto`` wheel, with its runtime libraries from
  ``intel-cmplr-lib-rt``; ``pip install 'meshmpc[mb]'``), eight scalar
  multiplications per call on AVX-512 IFMA. Used when the CPU reports IFMA
  and the library itself says it is applicable.
- ``"libsodium"``: libsodium's ``crypto_scalarmult_curve25519`` (the system
  library, as the OPRF kernels use), one point per call. Everywhere else.

Both give identical bytes for every input (the kernels clamp the scalar and
canonicalise u before either library sees them), so two parties on different
CPUs still meet in the same group. ``MESHMPC_X25519=libsodium`` or
``=mb8-ifma`` forces a path (the second fails with the reason when it cannot
run).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from meshmpc import _core
from meshmpc.crypto import sodium
from meshmpc.errors import MeshMPCError
from meshmpc.psi.errors import PsiError

PATH_ENV = "MESHMPC_X25519"
PATH_NAMES = {_core.X25519_SODIUM: "libsodium", _core.X25519_MB8: "mb8-ifma"}
_CODES = {name: code for code, name in PATH_NAMES.items()}

MB_DIST = "ipp-crypto"
MB_LIBRARY = "libcrypto_mb.so.13"
RUNTIME_DIST = "intel-cmplr-lib-rt"
RUNTIME_LIBRARIES = ("libintlc.so.5", "libimf.so", "libsvml.so", "libirng.so")
"""libcrypto_mb's Intel compiler runtime dependencies, in load order."""

_SODIUM_FUNCTIONS = ("crypto_scalarmult_curve25519", "crypto_generichash_blake2b_salt_personal")


class X25519PathError(MeshMPCError, RuntimeError):
    """The X25519 path asked for (``MESHMPC_X25519``) cannot run on this machine."""


class LowOrderPointError(PsiError, ValueError):
    """An X25519 input gave the all-zero result: a low-order point, never a hashed item."""

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"value {index} of the batch is a low-order X25519 point (its result "
                         "is all zero); honest parties never send one: the peer is faulty")


@dataclass(frozen=True)
class X25519Path:
    """The path that runs and why the multi-buffer one does not (empty when it does)."""

    name: str
    code: int
    mb_reason: str


@cache
def sodium_functions() -> np.ndarray:
    """The kernels' libsodium table (mm_x25519_fns order) as uint64 addresses."""
    lib = sodium.library()
    return np.array([ctypes.cast(getattr(lib, f), ctypes.c_void_p).value
                     for f in _SODIUM_FUNCTIONS], dtype=np.uint64)


def _dist_file(dist: str, name: str) -> Path | None:
    """The installed file ``name`` of distribution ``dist`` (found through its RECORD)."""
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.name == name:
            path = Path(str(entry.locate())).resolve()
            if path.exists():
                return path
    return None


def mb_library_paths() -> list[Path] | str:
    """The runtime libraries and libcrypto_mb from the installed wheels, or why not."""
    paths = []
    for dist, names in ((RUNTIME_DIST, RUNTIME_LIBRARIES), (MB_DIST, (MB_LIBRARY,))):
        for name in names:
            path = _dist_file(dist, name)
            if path is None:
                return (f"{name} not found: the {dist} wheel is not installed "
                        "(pip install 'meshmpc[mb]')")
            paths.append(path)
    return paths


@cache
def mb_status(check_cpu: bool = True) -> str:
    """Load the multi-buffer path once: "" when it is ready, else the reason it is not.

    ``check_cpu=False`` skips our own CPU check so that the library is asked
    too (tests use it to see crypto_mb refuse on a CPU without IFMA).
    """
    paths = mb_library_paths()
    if isinstance(paths, str):
        return paths
    return str(_core.x25519_mb_load([str(p) for p in paths], check_cpu))


def choose_path() -> X25519Path:
    """The path for this process: ``MESHMPC_X25519`` if set, else mb8-ifma when it can run."""
    wanted = os.environ.get(PATH_ENV, "auto").strip() or "auto"
    if wanted not in (*_CODES, "auto"):
        raise X25519PathError(f"{PATH_ENV}={wanted!r}: use one of auto, {', '.join(_CODES)}")
    if wanted == "libsodium":
        return X25519Path("libsodium", _core.X25519_SODIUM, f"{PATH_ENV}=libsodium")
    reason = mb_status()
    if not reason:
        return X25519Path("mb8-ifma", _core.X25519_MB8, "")
    if wanted == "mb8-ifma":
        raise X25519PathError(f"{PATH_ENV}=mb8-ifma cannot run here: {reason}; unset it to "
                              "use libsodium")
    return X25519Path("libsodium", _core.X25519_SODIUM, reason)


def x25519_batch(scalar: bytes, data: bytes, hashed: bytes | None,
                 path: str | None = None) -> bytes:
    """X25519(scalar, u) for each input; u = the 32-byte input, or BLAKE2b-256(16-byte
    input, person=``hashed``). ``path`` names one (tests), default :func:`choose_path`.

    Raises :class:`LowOrderPointError` for an input whose result is all zero.
    """
    code = choose_path().code if path is None else _CODES[path]
    if code == _core.X25519_MB8 and path is not None and mb_status():
        raise X25519PathError(f"x25519 path mb8-ifma cannot run here: {mb_status()}")
    width = 32 if hashed is None else 16
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
    out = np.empty((len(rows), 32), dtype=np.uint8)
    bad = _core.x25519_batch_into(sodium_functions(), code, scalar, rows, hashed, out)
    if bad >= 0:
        raise LowOrderPointError(int(bad))
    return out.tobytes()
