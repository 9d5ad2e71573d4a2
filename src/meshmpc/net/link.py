"""One authenticated, encrypted TCP link between two parties.

:class:`Link` is an ``asyncio.BufferedProtocol``: the socket reads straight
into the record reader's buffer, records are authenticated and decrypted in
place, and large-message chunks are decrypted directly into a buffer that
grows as they arrive. On the send side small messages are coalesced into one
BATCH record per event-loop iteration (one AEAD call and one write for many
messages); large messages go as CHUNK records with flow control.

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

import numpy as np

from meshmpc.net import codec, framing
from meshmpc.net.config import WanProfile
from meshmpc.net.errors import (
    HandshakeRejected,
    MalformedMessageError,
    NetworkError,
    PeerDisconnectedError,
    TruncatedFrameError,
)
from meshmpc.net.keys import IdentityKey, PublicKey
from meshmpc.net.mailbox import Mailbox
from meshmpc.net.receive import LargeReceive
from meshmpc.net.secure import Handshake, SessionCipher
from meshmpc.net.stats import LinkStats
from meshmpc.net.wan import WanShaper

BATCH_LIMIT = 256 * 1024
"""Flush a batch record once this many plaintext bytes are queued."""
CHUNK_SIZE = 1024 * 1024
"""Plaintext bytes per CHUNK record of a large message."""
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

    def pinned_key(self, peer: str) -> PublicKey | tuple[PublicKey, ...]: ...

    def check_claim(self, peer: str, dialer: bool) -> None: ...

    def link_authenticated(self, link: Link) -> bool: ...

    def link_dropped(self, link: Link, error: NetworkError) -> None: ...


def one_line(text: str, limit: int = MAX_ABORT_REASON) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class Link(asyncio.BufferedProtocol):
    """Protocol object for one TCP connection of a mesh."""

    def __init__(self, owner: LinkOwner, dialer: bool, expected_peer: str | None = None) -> None:
        self.owner = owner
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
        self.stats = LinkStats()
        self.error: NetworkError | None = None
        self.transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._peer_closed = False
        self._close_error: PeerDisconnectedError | None = None  # the peer's CLOSE or ABORT
        self._orderly_close = False
        self._closing = False
        self._lost = self.loop.create_future()
        self._raw: LargeReceive | None = None
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._flush_scheduled = False
        self._raw_lock = asyncio.Lock()
        self._raw_active = False
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._shaper: WanShaper | None = None

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
        if self._raw is not None:
            return PeerDisconnectedError(
                peer, f"disconnected in the middle of a message ({self._raw.filled} of "
                f"{self._raw.total} bytes received)"
            )
        if self._close_error is not None:
            return self._close_error
        return PeerDisconnectedError(peer, f"connection lost ({exc or 'peer closed the socket'})")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    # ----- handshake ----------------------------------------------------------

    def _on_record(self, record: framing.Record) -> None:
        if not self.ready.done():
            self._on_handshake_record(record)
        elif record.record_type == framing.BATCH:
            self._on_batch(self._cipher().open(record))
        elif record.record_type == framing.CHUNK:
            self._on_chunk(record)
        elif record.record_type == framing.CLOSE:
            self._cipher().open(record)
            self._orderly_close = True
            self._on_peer_close(PeerDisconnectedError(self.peer, "peer closed the link"))
        elif record.record_type == framing.ABORT:
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
        elif rtype == framing.BATCH and self.cipher is not None:
            self.cipher.open(record)  # the peer's key confirmation: it accepted us
            self._on_confirmed()
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
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self.owner.link_authenticated(self):
            self._fail(HandshakeRejected(self.peer, "duplicate connection for this party"))
            return
        self.ready.set_result(self)

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
            self._raw = LargeReceive(tag, kind, nbytes, dtype, shape)
        elif kind == codec.KIND_PACKED_BLOB:
            limit = self.owner.max_message_bytes
            if type(payload) is not int or not 0 < payload <= limit:
                raise MalformedMessageError(
                    f"bad message size {payload!r:.40} (limit {limit}, "
                    "cluster.max_message_bytes)", self.peer,
                )
            self._raw = LargeReceive(tag, kind, payload)
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
        self._raw = None
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

    def _on_peer_close(self, error: PeerDisconnectedError) -> None:
        self._peer_closed = True
        self._close_error = error
        if self.registered and self.peer is not None:
            self.owner.mailbox.fail(self.peer, error)

    # ----- sending ------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.error is not None:
            raise self.error
        if self._close_error is not None:
            raise self._close_error
        if self._closing:
            raise PeerDisconnectedError(self.peer, "link is closed")

    async def send(self, tag: str, obj: Any) -> None:
        """Queue one message; waits only when the link is backed up."""
        self._check_usable()
        self.stats.on_send(0, 1)
        if codec.is_raw_array(obj):
            arr = np.ascontiguousarray(obj)
            header = codec.raw_array_header(tag, arr)
            await self._send_large(codec.pack(header), arr.reshape(-1).view(np.uint8).data)
            return
        data = codec.pack([tag, codec.KIND_INLINE, obj])
        if len(data) > codec.RAW_ARRAY_THRESHOLD:
            announce = codec.pack([tag, codec.KIND_PACKED_BLOB, len(data)])
            await self._send_large(announce, memoryview(data))
            return
        self._enqueue(data)
        if self._backed_up():
            await self._drain()

    def _enqueue(self, item: bytes) -> None:
        self._batch.append(item)
        self._batch_bytes += len(item)
        if self._batch_bytes >= BATCH_LIMIT:
            self._flush_batch()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_batch)

    def _flush_batch(self, force: bool = False) -> None:
        self._flush_scheduled = False
        if not self._batch or self.error is not None or (self._raw_active and not force):
            return
        plain = b"".join(self._batch)
        self._batch.clear()
        self._batch_bytes = 0
        self._write(self._cipher().seal(framing.BATCH, plain))

    async def _send_large(self, header_item: bytes, payload: memoryview) -> None:
        async with self._raw_lock:
            self._check_usable()
            self._raw_active = True
            try:
                self._batch.append(header_item)
                self._flush_batch(force=True)
                cipher = self._cipher()
                for offset in range(0, len(payload), CHUNK_SIZE):
                    header, body = cipher.seal_parts(
                        framing.CHUNK, payload[offset : offset + CHUNK_SIZE]
                    )
                    self._write(header)
                    self._write(body)
                    if self._backed_up():
                        await self._drain()
            finally:
                self._raw_active = False
            self._flush_batch()

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

    def _backed_up(self) -> bool:
        shaped = self._shaper is not None and self._shaper.backlog > HIGH_WATER
        return self._paused or shaped

    def _wake(self) -> None:
        if self._backed_up():
            return
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _drain(self) -> None:
        while self._backed_up() and self.error is None:
            fut: asyncio.Future[None] = self.loop.create_future()
            self._drain_waiters.append(fut)
            await fut
        if self.error is not None:
            raise self.error

    async def flush(self) -> None:
        """Hand every queued record to the socket (and through the WAN shaper)."""
        self._flush_batch()
        if self._shaper is not None:
            await self._shaper.wait_idle()
        if not self._peer_closed:
            await self._drain()

    # ----- shutdown -----------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once either side closed the link in order (CLOSE, or our own close)."""
        return self._closing or self._orderly_close

    async def close(self, timeout: float = 5.0, reason: str | None = None) -> None:
        """Orderly close: flush, send CLOSE (or ABORT with ``reason``), close the socket."""
        if self.transport is None or self._closing:
            return
        if self.error is None and self.ready.done() and not self._peer_closed:
            async with self._raw_lock:
                self._flush_batch()
                if reason is None:
                    self._write(self._cipher().seal(framing.CLOSE, b""))
                else:
                    body = one_line(reason).encode()
                    self._write(self._cipher().seal(framing.ABORT, body))
            if self._shaper is not None:
                await asyncio.wait_for(self._shaper.wait_idle(), timeout)
        self._closing = True
        self.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), timeout)
        except TimeoutError:
            self.transport.abort()

    def _fail(self, error: NetworkError, abort: bool = True) -> None:
        if self.error is not None:
            return
        self.error = error
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self.registered and self.peer is not None:
            self.owner.mailbox.fail(self.peer, error)
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_exception(error)
        self._drain_waiters = []
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved by the mesh; silence "never retrieved"
        self._raw = None
        self.reader.release()
        self.owner.link_dropped(self, error)
        if abort and self.transport is not None:
            self.transport.abort()


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
