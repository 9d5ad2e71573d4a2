"""One authenticated, encrypted TCP link between two parties.

:class:`Link` is an ``asyncio.BufferedProtocol``: the socket reads straight
into the record reader's buffer, records are authenticated and decrypted in
place, and large-message chunks are decrypted directly into a buffer that
grows as they arrive. On the send side small messages are coalesced into one
BATCH record per event-loop iteration (one AEAD call and one write for many
messages); large messages go as CHUNK records with flow control. The message
stream itself (numbering, the resend buffer, acknowledgements, large-message
state) belongs to the peer's :class:`~meshmpc.net.session.Session`, which
outlives the connection: after key confirmation each connection exchanges
SESSION records that open a new session or resume the one it names.

Before the peer has authenticated, a connection is a stranger: records are
capped at ``PREAUTH_MAX_RECORD`` bytes in a small buffer, the handshake must
finish within the handshake deadline, and any failure only drops that
connection (its owner logs it). Only the link the owner *registered* after
authentication can fail a peer's mailbox: every fault on it (authentication
failure, tampering, replay, truncation, oversize frame, disconnect, the
peer's ABORT) fails every pending and future send/receive from that peer
with an error naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Protocol, cast

from meshmpc.net import codec, framing
from meshmpc.net.config import WanProfile
from meshmpc.net.errors import (
    DroppedFrameError,
    FrameTooLargeError,
    HandshakeRejected,
    MalformedMessageError,
    NetworkError,
    PeerDisconnectedError,
    ReplayedFrameError,
    SessionRefused,
    TamperedFrameError,
    TruncatedFrameError,
)
from meshmpc.net.keepalive import Keepalive
from meshmpc.net.keys import IdentityKey, PublicKey
from meshmpc.net.mailbox import Mailbox
from meshmpc.net.receive import LargeReceive
from meshmpc.net.secure import Handshake, SessionCipher
from meshmpc.net.session import (  # noqa: F401  (BATCH_LIMIT, CHUNK_SIZE: re-exported)
    ACK_BODY,
    BATCH_LIMIT,
    CAN_RESUME,
    CHUNK_SIZE,
    RESUMING,
    SESSION_BODY,
    Sealed,
    Session,
)
from meshmpc.net.stats import LinkStats
from meshmpc.net.wan import WanShaper

INTEGRITY_ERRORS = (TamperedFrameError, ReplayedFrameError, DroppedFrameError,
                    FrameTooLargeError)
"""Faults of the bytes in transit: the record is fetched again on a fresh connection."""
HIGH_WATER = 8 * 1024 * 1024
"""Senders wait when this many bytes are queued below the link."""
MAX_ABORT_REASON = 300
"""Characters of an ABORT reason sent or shown."""


class LinkOwner(Protocol):
    """What a link needs from its mesh (implemented by :class:`~meshmpc.net.tcp.TcpMesh`)."""

    party: str
    identity: IdentityKey
    mailbox: Mailbox
    wan: WanProfile | None
    fingerprint: bytes
    max_frame_bytes: int
    max_message_bytes: int
    handshake_timeout_s: float
    keepalive_s: float
    keepalive_timeout_s: float

    def pinned_key(self, peer: str) -> PublicKey | tuple[PublicKey, ...]: ...

    def check_claim(self, peer: str, dialer: bool) -> None: ...

    def key_revoked(self, key: PublicKey) -> bool: ...

    def link_authenticated(self, link: Link) -> bool: ...

    def link_dropped(self, link: Link, error: NetworkError) -> None: ...

    def session_for(self, link: Link, session_id: bytes, flags: int) -> Session: ...

    def open_session(self, link: Link, session_id: bytes, resumable: bool) -> Session: ...

    def first_session_id(self, peer: str) -> bytes: ...

    @property
    def resumable(self) -> bool: ...


def one_line(text: str, limit: int = MAX_ABORT_REASON) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class Link(asyncio.BufferedProtocol):
    """Protocol object for one TCP connection of a mesh."""

    def __init__(self, owner: LinkOwner, dialer: bool, expected_peer: str | None = None,
                 session: Session | None = None) -> None:
        self.owner = owner
        self.session = session  # given when this connection resumes it
        self.loop = asyncio.get_running_loop()
        self.peer = expected_peer
        self.dialer = dialer
        self.authenticated = False
        self.registered = False
        self.reader = framing.RecordReader(
            framing.PREAUTH_MAX_RECORD, expected_peer, min_free=framing.PREAUTH_BUFFER
        )
        self.handshake = Handshake(owner.identity, owner.fingerprint, dialer)
        self.cipher: SessionCipher | None = None
        self._decoder: codec.BatchDecoder | None = None
        self.ready: asyncio.Future[Link] = self.loop.create_future()
        self._stats = LinkStats()
        self._confirmed = False
        self._offered: bytes | None = None
        self.error: NetworkError | None = None
        self.transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._peer_closed = False
        self._close_error: PeerDisconnectedError | None = None  # the peer's CLOSE or ABORT
        self._orderly_close = False
        self._closing = False
        self._lost = self.loop.create_future()
        self._paused = False
        self._shaper: WanShaper | None = None
        self.keepalive = Keepalive(self)

    @property
    def stats(self) -> LinkStats:
        """Traffic counters: the session's once attached (they outlive the connection)."""
        return self.session.stats if self.session is not None else self._stats

    @stats.setter
    def stats(self, value: LinkStats) -> None:
        self._stats = value
        if self.session is not None:
            self.session.stats = value

    @property
    def _raw(self) -> LargeReceive | None:
        return self.session.raw if self.session is not None else None

    # ----- connection events -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        _tune_socket(self.transport.get_extra_info("socket"))
        self._deadline = self.loop.call_later(self.owner.handshake_timeout_s, self._expired)
        if self.owner.wan is not None:
            self._shaper = WanShaper(self.loop, self._transport_write, self.owner.wan, self._wake)
        self._write(self._plain_record(framing.HELLO, self.handshake.own_hello))

    def _expired(self) -> None:
        self._deadline = None
        if not self.ready.done():
            self._fail(HandshakeRejected(
                self.peer, f"handshake not finished within {self.owner.handshake_timeout_s:g}s"
            ))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.stats.on_receive(nbytes)
        try:
            for record in self.reader.buffer_updated(nbytes):
                self._on_record(record)
        except MalformedMessageError as exc:  # raised by the codec, which knows no peer
            self._fail(exc if exc.peer else MalformedMessageError(str(exc), self.peer))
        except NetworkError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        if self.error is None:
            self._fail(self._loss_error(exc), abort=False)
        self.transport = None

    def _loss_error(self, exc: Exception | None) -> NetworkError:
        peer = self.peer
        if not self.ready.done():
            return HandshakeRejected(
                peer, "connection closed during the handshake: the peer rejected us "
                "(is our public key pinned correctly in its config?) or went away"
            )
        if self._closing:
            return PeerDisconnectedError(peer, "link closed locally")
        if self.reader.partial:
            return TruncatedFrameError(peer, "connection ended inside a frame (truncated)")
        raw = self._raw
        if raw is not None:
            return PeerDisconnectedError(
                peer, f"disconnected in the middle of a message ({raw.filled} of "
                f"{raw.total} bytes received)"
            )
        if self._close_error is not None:
            return self._close_error
        return PeerDisconnectedError(peer, f"connection lost ({exc or 'peer closed the socket'})")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        if self.session is not None and self.session.link is self:
            self.session.wake()

    # ----- handshake ----------------------------------------------------------

    def _on_record(self, record: framing.Record) -> None:
        if not self.ready.done():
            self._on_handshake_record(record)
            return
        session = self.session
        assert session is not None
        rtype = record.record_type
        if rtype == framing.BATCH:
            plain = self._cipher().open(record)
            self._on_batch(plain)
            session.data_received(len(record.body))
        elif rtype == framing.CHUNK:
            self._on_chunk(record)
            session.data_received(len(record.body))
        elif rtype in (framing.PING, framing.PONG):
            self._cipher().open(record)
            if rtype == framing.PING:
                self.write_control(framing.PONG, b"")
        elif rtype == framing.ACK:
            body = self._cipher().open(record)
            if len(body) != ACK_BODY.size:
                raise MalformedMessageError("malformed acknowledgement", self.peer)
            session.acknowledged(ACK_BODY.unpack(body)[0])
        elif rtype == framing.CLOSE:
            self._cipher().open(record)
            self._orderly_close = True
            self._on_peer_close(PeerDisconnectedError(self.peer, "peer closed the link"))
            session.data_received(len(record.body))  # acknowledged at once: the peer waits
        elif rtype == framing.ABORT:
            reason = one_line(self._cipher().open(record).decode("utf-8", "replace"))
            self._on_peer_close(PeerDisconnectedError(
                self.peer, f"peer stopped with an error: {reason or 'no reason given'}"
            ))
        else:
            raise MalformedMessageError(f"unexpected record type {record.record_type}", self.peer)

    def _cipher(self) -> SessionCipher:
        assert self.cipher is not None
        return self.cipher

    def _on_handshake_record(self, record: framing.Record) -> None:
        rtype = record.record_type
        if rtype == framing.HELLO and self.handshake.peer_hello is None:
            self._accept_hello(bytes(record.body))
        elif rtype == framing.AUTH and self.handshake.peer_hello is not None and not self.cipher:
            assert self.peer is not None
            self.handshake.verify_peer(bytes(record.body), self.owner.pinned_key(self.peer))
            self.authenticated = True
            self.reader.set_limits(self.owner.max_frame_bytes)
            self._decoder = codec.BatchDecoder(self.owner.max_frame_bytes)
            self.cipher = self.handshake.session(self.peer)
            self._write(self.cipher.seal(framing.BATCH, b""))  # key confirmation
        elif rtype == framing.BATCH and self.cipher is not None and not self._confirmed:
            self.cipher.open(record)  # the peer's key confirmation: it accepted us
            self._on_confirmed()
        elif rtype == framing.SESSION and self._confirmed:
            self._on_session(self._cipher().open(record))
        elif rtype == framing.ABORT and self._confirmed:
            reason = one_line(self._cipher().open(record).decode("utf-8", "replace"))
            raise SessionRefused(self.peer, f"refused the link: {reason or 'no reason given'}")
        else:
            raise HandshakeRejected(self.peer, f"unexpected record type {rtype} in handshake")

    def _accept_hello(self, body: bytes) -> None:
        hello = self.handshake.read_hello(body)
        if self.peer is not None and hello.party != self.peer:
            raise HandshakeRejected(self.peer, f"answered as {hello.party!r}")
        self.owner.check_claim(hello.party, self.dialer)
        self.peer = self.reader.peer = hello.party
        self._write(self._plain_record(framing.AUTH, self.handshake.auth_message()))

    def _on_confirmed(self) -> None:
        """Both sides hold the keys: the dialer opens or resumes its session."""
        self._confirmed = True
        if not self.dialer:
            return  # the listener answers the dialer's SESSION record
        if self.session is not None:
            self._offered = self.session.offer(resuming=True)
        else:
            flags = CAN_RESUME if self.owner.resumable else 0
            assert self.peer is not None
            self._offered = SESSION_BODY.pack(self.owner.first_session_id(self.peer), 0, flags)
        self._write(self._cipher().seal(framing.SESSION, self._offered))

    def _on_session(self, body: bytes) -> None:
        """The peer's SESSION record: open, resume or refuse (listener), or the answer."""
        if len(body) != SESSION_BODY.size:
            raise HandshakeRejected(self.peer, "malformed session record")
        session_id, peer_received, flags = SESSION_BODY.unpack(body)
        if not self.dialer:
            try:
                session = self.owner.session_for(self, session_id, flags)
            except SessionRefused as exc:
                self._write(self._cipher().seal(framing.ABORT, one_line(str(exc)).encode()))
                raise
            self._write(self._cipher().seal(framing.SESSION, session.offer(
                resuming=bool(flags & RESUMING))))
        else:
            assert self._offered is not None
            if session_id != self._offered[:16]:
                raise HandshakeRejected(self.peer, "answered for another session")
            session = self.session or self.owner.open_session(
                self, session_id, bool(flags & CAN_RESUME) and self.owner.resumable)
        self._register(session, peer_received)

    def _register(self, session: Session, peer_received: int) -> None:
        """Attach to ``session`` once the mesh accepts this connection; resend from the
        peer's position."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if session.error is not None:  # it failed while this connection was being set up
            self._fail(session.error)
            return
        self.session = session
        if not self.owner.link_authenticated(self):
            self.session = None
            self._fail(HandshakeRejected(self.peer, "duplicate connection for this party"))
            return
        try:
            session.attach(self, peer_received)
        except NetworkError as exc:  # the peer's position contradicts ours: cannot go on
            session.fail(exc)
            raise
        self.ready.set_result(self)
        self.keepalive.start()

    # ----- receiving ----------------------------------------------------------

    def _on_batch(self, plain: bytes) -> None:
        if not plain:
            return
        if self._raw is not None:
            raise MalformedMessageError("message interleaved with a large message", self.peer)
        assert self._decoder is not None
        try:
            for item in self._decoder.decode(plain):
                self._on_item(item)
        except NetworkError:
            raise
        except Exception as exc:
            raise MalformedMessageError(f"undecodable message: {exc}", self.peer) from exc

    def _on_item(self, item: Any) -> None:
        if self._raw is not None:
            raise MalformedMessageError("message after a large-message header", self.peer)
        tag, kind, payload = item  # shape checked in C by BatchDecoder: str, 0..2, any
        if kind == codec.KIND_INLINE:
            self._deliver(tag, payload)
        elif kind == codec.KIND_RAW_ARRAY:
            limit = self.owner.max_message_bytes
            dtype, shape, nbytes = codec.check_raw_array_header(payload, limit)
            self._session().raw = LargeReceive(tag, kind, nbytes, dtype, shape)
        elif kind == codec.KIND_PACKED_BLOB:
            limit = self.owner.max_message_bytes
            if type(payload) is not int or not 0 < payload <= limit:
                raise MalformedMessageError(
                    f"bad message size {payload!r:.40} (limit {limit}, "
                    "cluster.max_message_bytes)", self.peer,
                )
            self._session().raw = LargeReceive(tag, kind, payload)
        else:
            raise MalformedMessageError(f"unknown message kind {kind!r:.40}", self.peer)

    def _on_chunk(self, record: framing.Record) -> None:
        raw = self._raw
        if raw is None:
            raise MalformedMessageError("chunk without a large-message header", self.peer)
        cipher = self._cipher()
        done = raw.receive(
            len(record.body) - 16, lambda out: cipher.open_into(record, out), self.peer
        )
        if not done:
            return
        self._session().raw = None
        if raw.kind == codec.KIND_PACKED_BLOB:
            item = codec.unpack(raw.blob())
            if not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str):
                raise MalformedMessageError("packed message is not [tag, kind, obj]", self.peer)
            self._deliver(item[0], item[2])
        else:
            self._deliver(raw.tag, raw.array())

    def _deliver(self, tag: str, obj: Any) -> None:
        self.stats.on_receive(0, 1)
        assert self.peer is not None
        self.owner.mailbox.deliver(self.peer, tag, obj)

    def _session(self) -> Session:
        assert self.session is not None
        return self.session

    def _on_peer_close(self, error: PeerDisconnectedError) -> None:
        self._peer_closed = True
        self._close_error = error
        self._session().on_peer_close(error)
        if self.registered and self.peer is not None:
            self.owner.mailbox.fail(self.peer, error)

    # ----- sending ------------------------------------------------------------

    async def send(self, tag: str, obj: Any) -> None:
        """Queue one message on this connection's session."""
        if self.error is not None:
            raise self.error
        await self._session().send(tag, obj)

    def write_data(self, rtype: int, plain: bytes | memoryview,
                   out: bytearray | None = None) -> Sealed | None:
        """Seal one data record of the session with this connection's keys and write it
        (a CHUNK's ciphertext into ``out`` if given); returns the cipher and the record
        as written (the session keeps them until the peer acknowledges), or None when
        the connection has failed (nothing written)."""
        if self.error is not None:
            return None
        cipher = self._cipher()
        if rtype == framing.CHUNK:
            header, body = cipher.seal_parts(rtype, plain, out)
            self._write(header)
            self._write(body)
            return cipher, (header, body)
        record = cipher.seal(rtype, plain)
        self._write(record)
        return cipher, (record,)

    def write_control(self, rtype: int, body: bytes) -> None:
        """Seal and write one record outside the numbered stream (ACK, ABORT)."""
        if self.error is None and self.cipher is not None:
            self._write(self.cipher.seal(rtype, body))

    def _plain_record(self, record_type: int, body: bytes) -> bytes:
        return framing.pack_header(len(body), 0, record_type) + body

    def _write(self, data: bytes | bytearray) -> None:
        self.stats.on_send(len(data), 0)
        if self._shaper is not None:
            self._shaper.write(data)
        else:
            self._transport_write(data)

    def _transport_write(self, data: bytes | bytearray) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def backed_up(self) -> bool:
        """True while the socket (or the WAN shaper) holds more than it should."""
        shaped = self._shaper is not None and self._shaper.backlog > HIGH_WATER
        return self._paused or shaped

    async def wait_shaped(self) -> None:
        """Wait until the WAN shaper (if any) has passed everything on."""
        if self._shaper is not None:
            await self._shaper.wait_idle()

    async def flush(self) -> None:
        """Hand every queued record of the session to the socket."""
        await self._session().flush()

    # ----- shutdown -----------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once either side closed the link in order (CLOSE, or our own close)."""
        return self._closing or self._orderly_close

    async def close(self, timeout: float = 5.0, reason: str | None = None) -> None:
        """Orderly close of this connection's session (or of a bare connection)."""
        session = self.session
        if session is not None and session.link is self and self.error is None:
            await session.close(timeout, reason)
        await self.close_transport(timeout)

    async def close_transport(self, timeout: float = 5.0) -> None:
        """Close the socket after what is queued, waiting up to ``timeout`` for it."""
        if self.transport is None or self._closing:
            return
        self._closing = True
        self.keepalive.stop()
        self.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), timeout)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()

    def abandon(self, error: NetworkError, tell: bool = True) -> None:
        """The session failed (``tell``: the peer gets an ABORT naming ``error``) or moved
        to another connection: close this one."""
        if tell and self.cipher is not None and self.transport is not None and not (
                self._peer_closed or self.transport.is_closing()):
            self._write(self.cipher.seal(framing.ABORT, one_line(str(error)).encode()))
            self.transport.close()  # after the ABORT
        self.keepalive.stop()
        if self.error is None:
            self.error = error
            self.reader.release()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def drop(self, error: NetworkError) -> None:
        """Drop this connection as lost (reset): its session resumes it or fails."""
        self._fail(error)

    def _fail(self, error: NetworkError, abort: bool = True) -> None:
        if self.error is not None:
            return
        self.error = error
        self.keepalive.stop()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved by the mesh; silence "never retrieved"
        self.reader.release()
        self.owner.link_dropped(self, error)
        if self.registered and self.session is not None:
            self.session.connection_lost(self, error, self._transient(error),
                                         isinstance(error, INTEGRITY_ERRORS))
        if abort and self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def _transient(self, error: NetworkError) -> bool:
        """A fault of the connection, not of the session: it may be resumed."""
        if self._closing or self._orderly_close or self._close_error is not None:
            return False
        return not isinstance(error, MalformedMessageError | SessionRefused)


def _tune_socket(sock: socket.socket | None) -> None:
    """No Nagle delay; kernel keepalive so a vanished peer is noticed within about
    25 s when no message is due. (No TCP_USER_TIMEOUT: Linux applies it to a zero
    window too, which would cut a healthy peer busy computing for a while.)"""
    if sock is None:
        return
    options = [
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", 0), 10),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", 0), 5),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", 0), 3),
    ]
    for level, name, value in options:
        if name:
            with contextlib.suppress(OSError):  # not every platform has every option
                sock.setsockopt(level, name, value)
