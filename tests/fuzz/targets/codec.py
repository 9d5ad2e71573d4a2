"""The message codec: msgpack items (with numpy extensions) as received in BATCH records."""

from __future__ import annotations

import contextlib
from typing import Any

from meshmpc.net import codec
from meshmpc.net.errors import MalformedMessageError


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    try:
        obj = codec.unpack(data)
    except MalformedMessageError:
        obj = None
    else:
        _repack(obj)
    try:
        items = list(codec.unpack_stream(data))
    except MalformedMessageError:
        items = None
    try:  # the links' reusable decoder: fresh decoding, restricted to message items
        decoder = codec.BatchDecoder(1 << 16)
        again = [decoder.decode(data), decoder.decode(data)]
    except MalformedMessageError:
        again = None
    if items is None:
        assert again is None, "batch decoder accepted what the codec refuses"
        return
    shaped = all(type(i) is list and len(i) == 3 and type(i[0]) is str and type(i[1]) is int
                 and 0 <= i[1] <= codec.KIND_PACKED_BLOB for i in items)
    if again is not None:
        assert shaped and codec.pack(again[0]) == codec.pack(again[1]) == codec.pack(items)
    elif shaped and items:
        raise AssertionError("batch decoder refused well-formed message items")
    for item in items:
        _repack(item)
        if isinstance(item, list) and len(item) == 3 and type(item[1]) is int and (
                item[1] == codec.KIND_RAW_ARRAY):
            with contextlib.suppress(MalformedMessageError):
                codec.check_raw_array_header(item[2], 1 << 20)


def _repack(obj: Any) -> None:
    """What decoded must encode again (protocol code forwards what it receives)."""
    try:
        codec.pack(obj)
    except (TypeError, ValueError, OverflowError):
        if not _has_odd_keys(obj):
            raise


def _has_odd_keys(obj: Any) -> bool:
    """msgpack decodes map keys (e.g. floats, None) that some encoders reject."""
    if isinstance(obj, dict):
        return True
    if isinstance(obj, list):
        return any(_has_odd_keys(x) for x in obj)
    return False
