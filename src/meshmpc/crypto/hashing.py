"""Hashes on 16-byte blocks (fixed-key AES) and on arbitrary byte items.

* :func:`ccr_hash` - circular correlation-robust H(x) = pi(s(x)) ^ s(x) with the
  linear orthomorphism s(xl || xr) = (xl ^ xr) || xl; one AES per block
  (Guo-Katz-Wang-Yu, "Efficient and secure multiparty computation from
  fixed-key block ciphers", S&P 2020). For garbling and hashing COT outputs.
* :func:`tccr_hash` - tweakable correlation-robust H(i, x) = pi(pi(x) ^ i) ^ pi(x)
  (same paper); two AES per block; the tweak is the OT index.
* :func:`item_hash` - arbitrary byte strings (entity keys) to 128 bits with
  BLAKE2b from libsodium, called from C for whole batches; optionally keyed,
  always domain-separated by a 16-byte personalisation string.

pi is AES-128 under :data:`meshmpc.crypto.aes.FIXED_KEY`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.aes import FIXED_KEY_AES, PATH_AUTO, Blocks, as_blocks
from meshmpc.crypto.errors import KernelInputError

DEFAULT_DOMAIN = b"meshmpc.item.v1"


def ccr_hash(blocks: npt.ArrayLike, out: np.ndarray | None = None, path: int = PATH_AUTO) -> Blocks:
    """Circular correlation-robust hash of every block; returns (n, 16) uint8."""
    src = as_blocks(blocks)
    dst = np.empty_like(src) if out is None else out
    _core.ccr_hash_into(FIXED_KEY_AES.round_keys, src, dst, path)
    return dst


def tccr_hash(
    blocks: npt.ArrayLike, tweak0: int, out: np.ndarray | None = None, path: int = PATH_AUTO
) -> Blocks:
    """Tweakable CR hash H(tweak0 + j, block j); returns (n, 16) uint8."""
    src = as_blocks(blocks)
    dst = np.empty_like(src) if out is None else out
    _core.tccr_hash_into(FIXED_KEY_AES.round_keys, tweak0, src, dst, path)
    return dst


@cache
def blake2b_address() -> int:
    """Address of libsodium's crypto_generichash_blake2b_salt_personal in PyNaCl.

    C kernels that hash whole batches (item_hash, KKRT) call it through this pointer.
    """
    import nacl.bindings  # noqa: F401  (runs sodium_init)
    from nacl._sodium import ffi, lib

    fn = ffi.addressof(lib, "crypto_generichash_blake2b_salt_personal")
    return int(ffi.cast("uintptr_t", fn))


def _personal(domain: bytes) -> bytes:
    if len(domain) > 16:
        raise KernelInputError(f"item_hash: domain must be at most 16 bytes, got {len(domain)}")
    return domain.ljust(16, b"\0")


def _flatten(items: Any) -> tuple[np.ndarray, np.ndarray]:
    """(data bytes, int64 offsets) for a list of bytes/str, a 2-D uint8 array or arrow array."""
    if isinstance(items, np.ndarray):
        if items.dtype != np.uint8 or items.ndim != 2:
            raise KernelInputError("item_hash: numpy input must be 2-D uint8, one row per item")
        data = np.ascontiguousarray(items).reshape(-1)
        return data, np.arange(items.shape[0] + 1, dtype=np.int64) * items.shape[1]
    if hasattr(items, "combine_chunks"):  # a pyarrow ChunkedArray (pa.array of >= 10^6
        items = items.combine_chunks()    # numpy strings gives one): hash it as one array
    if hasattr(items, "buffers") and hasattr(items, "offset"):
        return _flatten_arrow(items)
    encoded = [x.encode() if isinstance(x, str) else bytes(x) for x in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _flatten_arrow(arr: Any) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa

    if arr.null_count:
        raise KernelInputError(f"item_hash: {arr.null_count} null keys; drop or fill them first")
    width: type[np.signedinteger[Any]]
    if pa.types.is_string(arr.type) or pa.types.is_binary(arr.type):
        width = np.int32
    elif pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
        width = np.int64
    else:
        raise KernelInputError(f"item_hash: arrow type {arr.type} is not string or binary")
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1]
    if data_buf is None:
        return np.empty(0, np.uint8), offsets.astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    return data, offsets.astype(np.int64)


def item_hash(
    items: Sequence[bytes | str] | np.ndarray | Any,
    key: bytes = b"",
    domain: bytes = DEFAULT_DOMAIN,
) -> Blocks:
    """BLAKE2b-128 of every item (str as UTF-8); returns (n, 16) uint8.

    ``items`` is a sequence of bytes/str, a 2-D uint8 array (fixed-width
    items, one per row) or a pyarrow string/binary array (hashed in place).
    ``key`` (up to 64 bytes) makes it a PRF; ``domain`` separates uses.
    """
    if len(key) > 64:
        raise KernelInputError(f"item_hash: key must be at most 64 bytes, got {len(key)}")
    data, offsets = _flatten(items)
    out = np.empty((len(offsets) - 1, 16), dtype=np.uint8)
    _core.item_hash_into(blake2b_address(), data, offsets, bytes(key), _personal(domain), out)
    return out
