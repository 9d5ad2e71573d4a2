"""The HELLO parser and a listener's handshake fed arbitrary bytes from a stranger."""

from __future__ import annotations

from meshmpc.net import framing
from meshmpc.net.errors import ProtocolMismatchError
from meshmpc.net.secure import MAX_HELLO, parse_hello
from targets._linkfix import feed, make_link


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    try:
        hello = parse_hello(data)
        assert len(data) <= MAX_HELLO and 0 < len(hello.party) <= 64
    except ProtocolMismatchError:
        pass
    link, owner = make_link(authenticated=False)
    feed(link, data, 1 + (data[0] if data else 0))
    assert not link.ready.done() or link.ready.exception() is not None, "stranger got in"
    assert link.reader.capacity <= 4 * framing.PREAUTH_BUFFER, "stranger grew the buffer"
    assert not link.registered
