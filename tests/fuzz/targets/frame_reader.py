"""The record splitter, before and after authentication, fed in data-chosen slices."""

from __future__ import annotations

from meshmpc.net import framing
from meshmpc.net.errors import FrameTooLargeError


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    if not data:
        return
    preauth = data[0] & 1
    step = 1 + data[0] // 2
    limit = framing.PREAUTH_MAX_RECORD if preauth else 4096
    reader = framing.RecordReader(limit, "fuzz", min_free=64 if preauth else 1024)
    stream = data[1:]
    received = 0
    try:
        for pos in range(0, len(stream), step):
            piece = stream[pos : pos + step]
            for header, _counter, _rtype, body in reader.feed(piece):
                assert int.from_bytes(header[:4], "little") == len(body) <= limit
            received += len(piece)
            assert reader.capacity <= 2 * received + 2 * limit + 4096, "buffer outgrew data"
    except FrameTooLargeError:
        pass
