"""An authenticated link's record layer: BATCH items, large-message headers and CHUNKs,
CLOSE and ABORT (AES-GCM replaced by a null cipher so every byte reaches the parser)."""

from __future__ import annotations

from meshmpc.net.link import CHUNK_SIZE
from meshmpc.net.receive import GROWTH
from targets._linkfix import feed, make_link


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    if not data:
        return
    link, owner = make_link(authenticated=True)
    feed(link, data[1:], 1 + data[0] * 64)
    if link._raw is not None:
        assert link._raw.filled <= link._raw.total <= owner.max_message_bytes
        assert len(link._raw.buffer) <= max(GROWTH * link._raw.filled, CHUNK_SIZE), "buffer"
    if link.error is not None:
        assert owner.dropped and owner.dropped[-1] is link.error
