"""A Link over no socket, for the record-layer and handshake targets."""

from __future__ import annotations

import asyncio
from typing import Any

from nacl.signing import VerifyKey

from meshmpc.net import codec, framing
from meshmpc.net.errors import HandshakeRejected, NetworkError
from meshmpc.net.keys import IdentityKey
from meshmpc.net.link import Link
from meshmpc.net.mailbox import Mailbox
from meshmpc.net.session import Session

LOOP = asyncio.new_event_loop()
IDENTITY = IdentityKey.generate("bank")
PEER = IdentityKey.generate("gov")


class Owner:
    """The LinkOwner a fuzzed link reports to (a two-party mesh: bank and gov)."""

    party = "bank"
    identity = IDENTITY
    wan = None
    fingerprint = b"\x07" * 32
    max_frame_bytes = 1 << 16
    max_message_bytes = 1 << 20
    handshake_timeout_s = 60.0

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.dropped: list[NetworkError] = []

    def pinned_key(self, peer: str) -> VerifyKey:
        return PEER.signing_key.verify_key

    def check_claim(self, peer: str, dialer: bool) -> None:
        if peer != "gov":
            raise HandshakeRejected(peer, "not a peer")

    def link_authenticated(self, link: Link) -> bool:
        link.registered = True
        return True

    def link_dropped(self, link: Link, error: NetworkError) -> None:
        self.dropped.append(error)


class NullCipher:
    """Stands in for AES-GCM so the fuzzer reaches the plaintext record layer."""

    def __init__(self) -> None:
        self.send_counter = 0

    def open(self, record: framing.Record) -> bytes:
        return bytes(record.body)

    def open_into(self, record: framing.Record, out: memoryview) -> None:
        out[:] = record.body[: len(out)]

    def seal(self, record_type: int, plain: Any) -> bytes:
        return b""


def make_link(authenticated: bool) -> tuple[Link, Owner]:
    owner = Owner()

    async def build() -> Link:
        link = Link(owner, dialer=False)
        if authenticated:  # a session that cannot resume: every fault fails the link
            link.session = Session(owner.mailbox, "gov", bytes(16), False, False, 1 << 20, 0.0)
            link.session.link = link
        return link

    link = LOOP.run_until_complete(build())
    if authenticated:
        link.peer = "gov"
        link.authenticated = link.registered = True
        link.cipher = NullCipher()  # type: ignore[assignment]
        link.reader.set_limits(owner.max_frame_bytes, 4096)
        link._decoder = codec.BatchDecoder(owner.max_frame_bytes)
        link.ready.set_result(link)
    return link, owner


def feed(link: Link, stream: bytes, step: int) -> None:
    """Deliver ``stream`` to the link as the socket would, ``step`` bytes at a time."""
    pos = 0
    while pos < len(stream) and link.error is None:
        buf = link.get_buffer(-1)
        n = min(len(buf), step, len(stream) - pos)
        buf[:n] = stream[pos : pos + n]
        del buf
        link.buffer_updated(n)
        pos += n
