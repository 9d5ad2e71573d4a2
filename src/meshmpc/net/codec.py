"""Message encoding: msgpack for structure, numpy arrays as raw buffers.

A message is ``(tag, obj)``. Objects are anything msgpack packs (None, bool,
int, float, str, bytes, list, tuple, dict) plus numpy arrays, at any depth.

Two encodings exist, and the sender picks by size:

* inline: the whole object is one msgpack item; nested arrays become msgpack
  extension objects holding ``(dtype, shape, raw bytes)``;
* raw: a top-level array of at least ``RAW_ARRAY_THRESHOLD`` bytes is
  announced by a small header item and its bytes follow as chunk records that
  the receiver decrypts straight into a freshly allocated array: no
  per-element encoding and no extra copy on either side.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from meshmpc.net.errors import MalformedMessageError

RAW_ARRAY_THRESHOLD = 64 * 1024
"""Top-level arrays this large (bytes) travel as raw chunk records."""

_EXT_NDARRAY = 1

KIND_INLINE = 0
KIND_RAW_ARRAY = 1
KIND_PACKED_BLOB = 2
"""An inline message over ``RAW_ARRAY_THRESHOLD`` bytes, sent as chunk records."""


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = obj if obj.flags.c_contiguous else obj.copy(order="C")  # keeps 0-d shape
        head = msgpack.packb((arr.dtype.str, arr.shape))
        return msgpack.ExtType(_EXT_NDARRAY, head + arr.tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot send object of type {type(obj).__name__}")


def _unpack_ext(code: int, data: bytes) -> Any:
    if code != _EXT_NDARRAY:
        raise MalformedMessageError(f"unknown msgpack extension type {code}")
    unpacker = msgpack.Unpacker(use_list=False, raw=False)
    unpacker.feed(data)
    dtype, shape = unpacker.unpack()
    offset = unpacker.tell()
    return np.frombuffer(data, dtype=np.dtype(dtype), offset=offset).reshape(shape).copy()


_packer = msgpack.Packer(default=_pack_default, use_bin_type=True, autoreset=True)


def pack(item: Any) -> bytes:
    """Pack one msgpack item (arrays inside become extension objects)."""
    return _packer.pack(item)


def unpack(data: bytes | memoryview) -> Any:
    """Inverse of :func:`pack`."""
    try:
        return msgpack.unpackb(
            data, ext_hook=_unpack_ext, raw=False, use_list=True, strict_map_key=False
        )
    except MalformedMessageError:
        raise
    except Exception as exc:
        raise MalformedMessageError(f"cannot decode message: {exc}") from exc


def unpack_stream(data: bytes) -> msgpack.Unpacker:
    """An iterator over the msgpack items concatenated in ``data`` (a BATCH record)."""
    unpacker = msgpack.Unpacker(
        ext_hook=_unpack_ext, raw=False, strict_map_key=False,
        max_buffer_size=max(len(data), 1 << 20),
    )
    unpacker.feed(data)
    return unpacker


def is_raw_array(obj: Any) -> bool:
    """True when ``obj`` travels as raw chunk records rather than inline."""
    return isinstance(obj, np.ndarray) and obj.nbytes >= RAW_ARRAY_THRESHOLD


def raw_array_header(tag: str, arr: np.ndarray) -> list[Any]:
    """The batch item announcing a raw array: ``[tag, KIND_RAW_ARRAY, [dtype, shape, nbytes]]``."""
    return [tag, KIND_RAW_ARRAY, [arr.dtype.str, list(arr.shape), int(arr.nbytes)]]


def allocate_raw_array(meta: Any, max_bytes: int) -> np.ndarray:
    """Allocate the destination array a raw-array header announces, checking it first."""
    try:
        dtype_str, shape, nbytes = meta
        dtype = np.dtype(dtype_str)
        shape = tuple(int(s) for s in shape)
        count = 1
        for s in shape:
            count *= s
        nbytes = int(nbytes)
    except Exception as exc:
        raise MalformedMessageError(f"bad raw array header {meta!r}: {exc}") from exc
    if dtype.hasobject or any(s < 0 for s in shape) or count * dtype.itemsize != nbytes:
        raise MalformedMessageError(f"inconsistent raw array header {meta!r}")
    if nbytes > max_bytes:
        raise MalformedMessageError(
            f"announced array of {nbytes} bytes exceeds the message limit of {max_bytes}"
        )
    return np.empty(shape, dtype=dtype)


def encoded_size(obj: Any) -> int:
    """Bytes ``obj`` occupies on the wire before encryption overhead."""
    if is_raw_array(obj):
        return int(obj.nbytes) + 32
    return len(pack(obj))
