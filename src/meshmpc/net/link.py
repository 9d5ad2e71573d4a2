"""One authenticated, encrypted TCP link between two parties.

:class:`Link` is an ``asyncio.BufferedProtocol``: the socket reads straight
into the record reader's buffer, records are authenticated and decrypted in
place, and raw array chunks are decrypted directly into the destination
array. On the send side small messages are coalesced into one BATCH record
per event-loop iteration (one AEAD call and one write for many messages);
large messages go as CHUNK records with flow control, so memory stays bounded.

Any fault (authentication failure, tampering, replay, truncation, oversize
frame, disconnect) closes the link and fails every pending and future
send/receive on it with an error naming the peer.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from meshmpc.net import codec, framing
from meshmpc.net.errors import (
    AuthenticationError,
    MalformedMessageError,
    NetworkError,
    PeerDisconnectedError,
    TruncatedFrameError,
)
from meshmpc.net.secure import Handshake, SessionCipher
from meshmpc.net.stats import LinkStats
from meshmpc.net.wan import WanShaper

if TYPE_CHECKING:
    from meshmpc.net.tcp import TcpMesh

BATCH_LIMIT = 256 * 1024
"""Flush a batch record once this many plaintext bytes are queued."""
CHUNK_SIZE = 1024 * 1024
"""Plaintext bytes per CHUNK record of a large message."""
HIGH_WATER = 8 * 1024 * 1024
"""Senders wait when this many bytes are queued below the link."""


@dataclass
class _RawReceive:
    """A large message being received chunk by chunk."""

    tag: str
    kind: int
    target: np.ndarray | bytearray
    view: memoryview
    filled: int = 0


class Link(asyncio.BufferedProtocol):
    """Protocol object for one TCP connection of a :class:`TcpMesh`."""

    def __init__(self, mesh: TcpMesh, dialer: bool, expected_peer: str | None = None) -> None:
        self.mesh = mesh
        self.loop = asyncio.get_running_loop()
        self.peer = expected_peer
        self.dialer = dialer
        self.reader = framing.RecordReader(mesh.config.max_frame_bytes, expected_peer)
        self.handshake = Handshake(mesh.identity, mesh.config.cluster_id, dialer)
        self.cipher: SessionCipher | None = None
        self.ready: asyncio.Future[Link] = self.loop.create_future()
        self.stats = LinkStats()
        self.error: NetworkError | None = None
        self.transport: asyncio.Transport | None = None
        self._peer_closed = False
        self._closing = False
        self._lost = self.loop.create_future()
        self._raw: _RawReceive | None = None
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._flush_scheduled = False
        self._raw_lock = asyncio.Lock()
        self._raw_active = False
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._shaper: WanShaper | None = None
        mesh.connections.add(self)

    # ----- connection events -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.mesh.wan is not None:
            self._shaper = WanShaper(self.loop, self._transport_write, self.mesh.wan, self._wake)
        self._write(self._plain_record(framing.HELLO, self.handshake.own_hello))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.stats.on_receive(nbytes)
        try:
            for record in self.reader.buffer_updated(nbytes):
                self._on_record(record)
        except NetworkError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        if self.error is not None:
            return
        self._fail(self._loss_error(exc), abort=False)

    def _loss_error(self, exc: Exception | None) -> NetworkError:
        peer = self.peer
        if self._closing:
            return PeerDisconnectedError(peer, "link closed locally")
        if self.reader.partial:
            return TruncatedFrameError(peer, "connection ended inside a frame (truncated)")
        if self._raw is not None:
            return PeerDisconnectedError(
                peer, f"disconnected in the middle of a message ({self._raw.filled} of "
                f"{len(self._raw.view)} bytes received)"
            )
        if not self.ready.done():
            return PeerDisconnectedError(
                peer, "connection closed during the handshake: the peer rejected us "
                "(is our public key pinned correctly in its config?) or went away"
            )
        if self._peer_closed:
            return PeerDisconnectedError(peer, "peer closed the link")
        return PeerDisconnectedError(peer, f"connection lost ({exc or 'peer closed the socket'})")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    # ----- receiving ----------------------------------------------------------

    def _on_record(self, record: framing.Record) -> None:
        if self.cipher is None or not self.ready.done():
            self._on_handshake_record(record)
        elif record.record_type == framing.BATCH:
            self._on_batch(self.cipher.open(record))
        elif record.record_type == framing.CHUNK:
            self._on_chunk(record)
        elif record.record_type == framing.CLOSE:
            self.cipher.open(record)
            self._on_peer_close()
        else:
            raise MalformedMessageError(f"unexpected record type {record.record_type}", self.peer)

    def _on_handshake_record(self, record: framing.Record) -> None:
        rtype = record.record_type
        if rtype == framing.HELLO and self.handshake.peer_hello is None:
            self._accept_hello(bytes(record.body))
        elif rtype == framing.AUTH and self.handshake.peer_hello is not None and not self.cipher:
            assert self.peer is not None
            pinned = self.mesh.config.party(self.peer).public_key
            self.handshake.verify_peer(bytes(record.body), pinned)
            self.cipher = self.handshake.session(self.peer)
            self._write(self.cipher.seal(framing.BATCH, b""))  # key confirmation
        elif rtype == framing.BATCH and self.cipher is not None:
            self.cipher.open(record)  # the peer's key confirmation: it accepted us
            self.stats = self.mesh.stats[self.peer] if self.peer else self.stats
            self.mesh.link_ready(self)
            if not self.ready.done():
                self.ready.set_result(self)
        else:
            raise AuthenticationError(self.peer, f"unexpected record type {rtype} in handshake")

    def _accept_hello(self, body: bytes) -> None:
        hello = self.handshake.read_hello(body)
        if self.peer is not None and hello.party != self.peer:
            raise AuthenticationError(self.peer, f"answered as {hello.party!r}")
        if hello.party not in self.mesh.parties or hello.party == self.mesh.party:
            raise AuthenticationError(hello.party, "unknown party, not in the cluster config")
        self.peer = self.reader.peer = hello.party
        self._write(self._plain_record(framing.AUTH, self.handshake.auth_message()))

    def _on_batch(self, plain: bytes) -> None:
        if not plain:
            return
        if self._raw is not None:
            raise MalformedMessageError("message interleaved with a large message", self.peer)
        try:
            for item in codec.unpack_stream(plain):
                self._on_item(item)
        except NetworkError:
            raise
        except Exception as exc:
            raise MalformedMessageError(f"undecodable message: {exc}", self.peer) from exc

    def _on_item(self, item: Any) -> None:
        if self._raw is not None:
            raise MalformedMessageError("message after a large-message header", self.peer)
        tag, kind, payload = item
        if kind == codec.KIND_INLINE:
            self._deliver(tag, payload)
        elif kind == codec.KIND_RAW_ARRAY:
            arr = codec.allocate_raw_array(payload, self.mesh.max_message_bytes)
            self._raw = _RawReceive(tag, kind, arr, arr.reshape(-1).view(np.uint8).data)
        elif kind == codec.KIND_PACKED_BLOB:
            size = int(payload)
            if not 0 < size <= self.mesh.max_message_bytes:
                raise MalformedMessageError(f"bad message size {size}", self.peer)
            blob = bytearray(size)
            self._raw = _RawReceive(tag, kind, blob, memoryview(blob))
        else:
            raise MalformedMessageError(f"unknown message kind {kind!r}", self.peer)

    def _on_chunk(self, record: framing.Record) -> None:
        raw = self._raw
        if raw is None:
            raise MalformedMessageError("chunk without a large-message header", self.peer)
        size = len(record.body) - 16
        if size <= 0 or raw.filled + size > len(raw.view):
            raise MalformedMessageError("chunk overruns its message", self.peer)
        assert self.cipher is not None
        self.cipher.open_into(record, raw.view[raw.filled : raw.filled + size])
        raw.filled += size
        if raw.filled == len(raw.view):
            self._raw = None
            raw.view.release()
            if raw.kind == codec.KIND_PACKED_BLOB:
                tag, _kind, obj = codec.unpack(bytes(raw.target))
                self._deliver(tag, obj)
            else:
                self._deliver(raw.tag, raw.target)

    def _deliver(self, tag: str, obj: Any) -> None:
        self.stats.on_receive(0, 1)
        assert self.peer is not None
        self.mesh.mailbox.deliver(self.peer, tag, obj)

    def _on_peer_close(self) -> None:
        self._peer_closed = True
        closed = PeerDisconnectedError(self.peer, "peer closed the link")
        self.mesh.mailbox.fail(self.peer or "?", closed)

    # ----- sending ------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.error is not None:
            raise self.error
        if self._peer_closed or self._closing:
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
        assert self.cipher is not None
        plain = b"".join(self._batch)
        self._batch.clear()
        self._batch_bytes = 0
        self._write(self.cipher.seal(framing.BATCH, plain))

    async def _send_large(self, header_item: bytes, payload: memoryview) -> None:
        async with self._raw_lock:
            self._check_usable()
            self._raw_active = True
            try:
                self._batch.append(header_item)
                self._flush_batch(force=True)
                assert self.cipher is not None
                for offset in range(0, len(payload), CHUNK_SIZE):
                    header, body = self.cipher.seal_parts(
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

    async def close(self, timeout: float = 5.0) -> None:
        """Orderly close: flush, send CLOSE, close the socket."""
        if self.transport is None or self._closing:
            return
        if self.error is None and self.cipher is not None and self.ready.done():
            async with self._raw_lock:
                self._flush_batch()
                self._write(self.cipher.seal(framing.CLOSE, b""))
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
        if self.peer is not None:
            self.mesh.mailbox.fail(self.peer, error)
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_exception(error)
        self._drain_waiters = []
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved by the mesh; silence "never retrieved"
        self.mesh.link_failed(self, error)
        if abort and self.transport is not None:
            self.transport.abort()
