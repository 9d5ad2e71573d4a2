"""Message encoding: msgpack for structure, numpy arrays as raw buffers.

A message is ``(tag, obj)``. Objects are anything msgpack packs (None, bool,
int, float, str, bytes, list, tuple, dict) plus numpy arrays, at any depth.

Two encodings exist, and the sender picks by size:

* inline: the whole object is one msgpack item; nested arrays become msgpack
  extension objects holding ``(dtype, shape, raw bytes)``;
* raw: a top-level array of at least ``RAW_ARRAY_THRESHOLD`` bytes is
  announced by a small header item and its bytes follow as chunk records that
  the receiver decrypts straight into a buffer that grows as they arrive
  (see :mod:`meshmpc.net.receive`): no per-element encoding and no extra copy.

Every unpack first runs a structural check in C (``wire_msgpack_check``: no
container may announce more elements than the bytes left could hold, which
bounds what the decoder preallocates by the input size), then msgpack with
explicit limits derived from the size of the data at hand; numpy dtypes from the wire are limited to
plain numbers (no objects, records or sub-arrays).
"""

from __future__ import annotations

import re
from typing import Any

import msgpack
import numpy as np

from meshmpc._core import wire_msgpack_check
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


def _limits(size: int) -> dict[str, int]:
    """msgpack limits for ``size`` bytes of input: nothing may claim more than is there."""
    size = max(size, 1)
    return {
        "max_buffer_size": size, "max_str_len": size, "max_bin_len": size,
        "max_array_len": size, "max_map_len": size // 2 + 1, "max_ext_len": size,
    }


def _item_limits(size: int) -> dict[str, int]:
    """The per-item limits of :func:`_limits` (``unpackb`` takes no buffer size)."""
    limits = _limits(size)
    del limits["max_buffer_size"]
    return limits


_WIRE_DTYPE = re.compile(r"[<>|=]?(?:b1|\?|[iu][1248]|f[248]|c8|c16)")


def wire_dtype(spec: Any) -> np.dtype:
    """A dtype received from a peer: plain bool, integer, float or complex only
    (matched as text first: numpy's own dtype-string parser is not for strangers)."""
    if not isinstance(spec, str) or not _WIRE_DTYPE.fullmatch(spec):
        raise MalformedMessageError(f"bad dtype {spec!r:.40}: not a plain number type")
    return np.dtype(spec)


def wire_shape(spec: Any) -> tuple[int, ...]:
    """A shape received from a peer: up to 32 non-negative ints."""
    if not isinstance(spec, list | tuple) or len(spec) > 32:
        raise MalformedMessageError(f"bad shape {spec!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in spec):
        raise MalformedMessageError(f"bad shape {spec!r}")
    return tuple(spec)


def _unpack_ext(code: int, data: bytes) -> Any:
    if code != _EXT_NDARRAY:
        raise MalformedMessageError(f"unknown msgpack extension type {code}")
    unpacker = msgpack.Unpacker(
        use_list=False, raw=False, max_buffer_size=len(data), max_str_len=16, max_bin_len=0,
        max_array_len=32, max_map_len=0, max_ext_len=0,
    )  # the header is (dtype string, shape of <= 32 ints); the array bytes follow it
    unpacker.feed(data)
    head = unpacker.unpack()
    if not isinstance(head, tuple) or len(head) != 2:
        raise MalformedMessageError("bad array extension header")
    dtype, shape = wire_dtype(head[0]), wire_shape(head[1])
    offset = unpacker.tell()
    count = 1
    for s in shape:
        count *= s
    if count * dtype.itemsize != len(data) - offset:
        raise MalformedMessageError("array extension size does not match its header")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).copy()


_packer = msgpack.Packer(default=_pack_default, use_bin_type=True, autoreset=True)


def pack(item: Any) -> bytes:
    """Pack one msgpack item (arrays inside become extension objects)."""
    return _packer.pack(item)


def check_structure(data: bytes | memoryview, expect_one: bool = False,
                    batch: bool = False) -> None:
    """Refuse malformed msgpack, and containers announcing more than the data holds;
    with ``batch``, also anything but ``[tag: str, kind: 0..2, payload]`` items."""
    result = wire_msgpack_check(data, int(batch), KIND_PACKED_BLOB)
    if result < 0:
        raise MalformedMessageError(
            f"malformed or over-announcing msgpack at byte {-result - 1} of {len(data)}"
        )
    if expect_one and result != 1:
        raise MalformedMessageError(f"expected one msgpack object, found {result}")


def unpack(data: bytes | memoryview) -> Any:
    """Inverse of :func:`pack`."""
    check_structure(data, expect_one=True)
    try:
        return msgpack.unpackb(
            data, ext_hook=_unpack_ext, raw=False, use_list=True, strict_map_key=False,
            **_item_limits(len(data)),
        )
    except MalformedMessageError:
        raise
    except Exception as exc:
        raise MalformedMessageError(f"cannot decode message: {exc}") from exc


def unpack_stream(data: bytes) -> list[Any]:
    """The msgpack items concatenated in ``data`` (a BATCH record); any decoding
    problem raises :class:`MalformedMessageError`."""
    check_structure(data)
    size = max(len(data), 1)
    unpacker = msgpack.Unpacker(
        ext_hook=_unpack_ext, raw=False, strict_map_key=False, max_buffer_size=size,
        max_str_len=size, max_bin_len=size, max_array_len=size, max_map_len=size // 2 + 1,
        max_ext_len=size,
    )
    unpacker.feed(data)
    try:
        return list(unpacker)
    except MalformedMessageError:
        raise
    except Exception as exc:
        raise MalformedMessageError(f"cannot decode message: {exc}") from exc


class BatchDecoder:
    """Decodes one link's BATCH records with one reusable msgpack Unpacker.

    Building an Unpacker costs about twice as much as decoding a small batch,
    and a link decodes a batch per flight; the structural check runs on every
    batch, the Unpacker's limits are the link's record limit.
    """

    def __init__(self, max_bytes: int) -> None:
        self._unpacker = msgpack.Unpacker(
            ext_hook=_unpack_ext, raw=False, strict_map_key=False, **_limits(max_bytes)
        )

    def decode(self, data: bytes) -> list[Any]:
        """The ``[tag, kind, payload]`` items of one BATCH record (checked in C to be
        a str, an int 0..2 and anything); any problem raises MalformedMessageError
        (after which this decoder, like its link, must not be used again)."""
        check_structure(data, batch=True)
        try:
            self._unpacker.feed(data)
            return list(self._unpacker)
        except MalformedMessageError:
            raise
        except Exception as exc:
            raise MalformedMessageError(f"cannot decode message: {exc}") from exc


def is_raw_array(obj: Any) -> bool:
    """True when ``obj`` travels as raw chunk records rather than inline."""
    return isinstance(obj, np.ndarray) and obj.nbytes >= RAW_ARRAY_THRESHOLD


def raw_array_header(tag: str, arr: np.ndarray) -> list[Any]:
    """The batch item announcing a raw array: ``[tag, KIND_RAW_ARRAY, [dtype, shape, nbytes]]``."""
    return [tag, KIND_RAW_ARRAY, [arr.dtype.str, list(arr.shape), int(arr.nbytes)]]


def check_raw_array_header(meta: Any, max_bytes: int) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate a raw-array header ``[dtype, shape, nbytes]``; nothing is allocated here."""
    if not isinstance(meta, list | tuple) or len(meta) != 3:
        raise MalformedMessageError(f"bad raw array header {meta!r:.100}")
    dtype, shape, nbytes = wire_dtype(meta[0]), wire_shape(meta[1]), meta[2]
    count = 1
    for s in shape:
        count *= s
    if not isinstance(nbytes, int) or nbytes <= 0 or count * dtype.itemsize != nbytes:
        raise MalformedMessageError(f"inconsistent raw array header {meta!r:.100}")
    if nbytes > max_bytes:
        raise MalformedMessageError(
            f"announced array of {nbytes} bytes exceeds the message limit of {max_bytes} "
            "(cluster.max_message_bytes)"
        )
    return dtype, shape, nbytes


def encoded_size(obj: Any) -> int:
    """Bytes ``obj`` occupies on the wire before encryption overhead."""
    if is_raw_array(obj):
        return int(obj.nbytes) + 32
    return len(pack(obj))
