"""A per-peer session: the reliable message stream that outlives TCP connections.

A :class:`Session` is what protocol code talks to (through the mesh): it
encodes messages into data records (BATCH, CHUNK, CLOSE), numbers them, and
hands them to its current connection (:class:`~meshmpc.net.link.Link`), which
seals them with that connection's keys. A resumable session also keeps every
data record the peer has not yet acknowledged, up to ``buffer_bytes`` of
plaintext size (a sender waits when the buffer is full, it never drops): a
reference to its plaintext when nobody else can change it (batches, packed
messages, arrays the session copied), else the record as the connection sealed
it, never a copy. A resume decrypts sealed records with the old connection's
send key and seals them again under the new one's. The receiving side acknowledges
cumulatively: after ``ACK_BYTES`` bytes or ``ACK_RECORDS`` records, else
``ACK_DELAY_S`` after the last one.

When the connection drops while both processes live, the dialling side
reconnects; the new connection runs a fresh handshake (new ephemeral keys,
counters from zero) and then exchanges SESSION records naming the session id
and how many data records each side has received. Each side resends from the
other's position, so the stream above sees neither loss nor duplicates. A
record that fails authentication is treated like a connection loss: the
connection is dropped and the record fetched again on a fresh one, at most
``MAX_REFETCH`` times for the same position. A session not resumed within the
grace period fails every pending and future receive with an error naming the
link, as a dropped link did before.

Sequence numbers are implicit: the i-th data record on a connection is record
``R + i`` of the session, where ``R`` is the receiver's position exchanged in
SESSION; the per-connection AEAD counter already rejects any reordering.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from meshmpc.net import codec, framing
from meshmpc.net.errors import LinkBrokenError, NetworkError, PeerDisconnectedError
from meshmpc.net.log import event
from meshmpc.net.mailbox import Mailbox
from meshmpc.net.receive import LargeReceive
from meshmpc.net.stats import LinkStats

if TYPE_CHECKING:
    from meshmpc.net.link import Link
    from meshmpc.net.secure import SessionCipher

Sealed = tuple["SessionCipher", tuple[bytes | bytearray, ...]]
"""A data record as a connection wrote it: the cipher that sealed it and its bytes."""
Kept = tuple[int, int, int, "bytes | memoryview | tuple[bytes | bytearray, ...]",
             "SessionCipher | None"]
"""An unacknowledged record: number, type, plaintext size, and either its sealed bytes
with their cipher, or its plaintext (memory nobody else changes) and None."""

BATCH_LIMIT = 256 * 1024
"""Flush a batch record once this many plaintext bytes are queued."""
CHUNK_SIZE = 1024 * 1024
"""Plaintext bytes per CHUNK record of a large message."""
ACK_BYTES = 1024 * 1024
ACK_RECORDS = 64
ACK_DELAY_S = 0.05
"""Acknowledge after this many bytes or records received, else this long after the last."""
SPARE_CHUNKS = 8
"""Acknowledged CHUNK ciphertext buffers a resumable session keeps for reuse (a fresh
1 MiB buffer per chunk costs page faults and cold memory: about as much as the cipher)."""
MAX_REFETCH = 3
"""Times a record that failed authentication is fetched again before the link is broken."""
SESSION_BODY = struct.Struct("<16sQB")
"""SESSION record: session id, data records received so far, flags."""
CAN_RESUME, RESUMING = 1, 2
ACK_BODY = struct.Struct("<Q")


class Session:
    """One peer's reliable, ordered message stream across connections."""

    def __init__(self, mailbox: Mailbox, peer: str, session_id: bytes, dialer: bool,
                 resumable: bool, buffer_bytes: int, grace_s: float,
                 on_lost: Callable[[Session], None] | None = None,
                 on_failed: Callable[[Session, NetworkError], None] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.mailbox = mailbox
        self.peer = peer
        self.id = session_id
        self.dialer = dialer
        self.resumable = resumable
        self.buffer_bytes = buffer_bytes
        self.grace_s = grace_s
        self.stats = LinkStats()
        self.link: Link | None = None
        self.error: NetworkError | None = None
        self.closed = False
        self.last_loss: NetworkError | None = None
        self._on_lost = on_lost
        self._on_failed = on_failed
        self._grace: asyncio.TimerHandle | None = None
        # sending
        self.sent = 0
        self.unacked: deque[Kept] = deque()
        self.unacked_bytes = 0
        self.peak_unacked_bytes = 0
        self._spare: list[bytearray] = []  # acknowledged: written and received, reusable
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._flush_scheduled = False
        self._raw_lock = asyncio.Lock()
        self._raw_active = False
        self._waiters: list[asyncio.Future[None]] = []
        self._delivery: list[asyncio.Future[None]] = []
        # receiving
        self.received = 0
        self.raw: LargeReceive | None = None
        self.peer_closed = False
        self.close_error: PeerDisconnectedError | None = None
        self._ack_sent = 0
        self._ack_bytes = 0
        self._ack_timer: asyncio.TimerHandle | None = None
        self._refetch_at = -1
        self._refetches = 0
        self.resumes = 0
        self.held_abort: str | None = None  # an ABORT waiting for the link to come back

    # ----- connections ----------------------------------------------------------

    def offer(self, resuming: bool) -> bytes:
        """Our SESSION body for a new connection."""
        flags = (CAN_RESUME if self.resumable else 0) | (RESUMING if resuming else 0)
        return SESSION_BODY.pack(self.id, self.received, flags)

    def attach(self, link: Link, peer_received: int) -> None:
        """Make ``link`` the session's connection and resend what the peer lacks."""
        first = self.sent - len(self.unacked) if self.resumable else self.sent
        if not first <= peer_received <= self.sent:
            raise LinkBrokenError(self.peer, f"peer resumes at record {peer_received}, but we "
                                  f"sent {self.sent} and still hold {first}..{self.sent - 1}")
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self.acknowledged(peer_received)
        self.link = link
        if self.held_abort is not None:  # we are stopping: the reason, not the data
            link.write_control(framing.ABORT, self.held_abort.encode())
            self._wake_delivery()
            return
        self.unacked = deque(self._resend(link, kept) for kept in self.unacked)
        if self.last_loss is not None:
            self.resumes += 1
            event(logging.INFO, "link.resumed", peer=self.peer, at=peer_received,
                  resent=len(self.unacked), after=type(self.last_loss).__name__)
        self._ack_sent = -1  # tell the new connection where we are soon
        self.data_received(0)
        self.wake()

    def connection_lost(self, link: Link, error: NetworkError, transient: bool,
                        integrity: bool) -> None:
        """``link`` dropped with ``error``: wait for a resume (grace period) or fail now
        (a session that cannot resume, or an error of the session, not the connection)."""
        if link is not self.link:
            return
        if not (self.resumable and transient) or self.closed:
            self.fail(error)  # tells the peer (ABORT) while the socket is still open
            return
        if integrity:
            if self._refetch_at != self.received:
                self._refetch_at, self._refetches = self.received, 0
            self._refetches += 1
            if self._refetches > MAX_REFETCH:
                self.fail(LinkBrokenError(self.peer, f"{_bare(error)}; record {self.received} "
                                          "failed "
                                          f"again after being fetched {MAX_REFETCH} times "
                                          "from the sender: link broken"))
                return
            event(logging.WARNING, "link.refetch", peer=self.peer, record=self.received,
                  attempt=self._refetches, reason=str(error))
        else:
            event(logging.WARNING, "link.interrupted", peer=self.peer, reason=str(error),
                  grace_s=self.grace_s)
        self.link = None
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self.last_loss = error
        if self._grace is None:
            self._grace = self.loop.call_later(self.grace_s, self._expired)
        if self._on_lost is not None:
            self._on_lost(self)

    def _expired(self) -> None:
        self._grace = None
        if self.link is None and self.error is None:
            self.fail(LinkBrokenError(self.peer, f"connection lost and not restored within "
                                      f"the {self.grace_s:g} s grace period (last: "
                                      f"{_bare(self.last_loss)})"))

    def fail(self, error: NetworkError) -> None:
        """The session is over: fail every waiting sender, and the peer's receives."""
        if self.error is not None:
            return
        self.error = error
        for timer in (self._grace, self._ack_timer):
            if timer is not None:
                timer.cancel()
        self._grace = self._ack_timer = None
        self.raw = None
        self.unacked.clear()
        self._spare = []
        self.unacked_bytes = 0
        for fut in self._waiters:
            if not fut.done():
                fut.set_exception(error)
                fut.exception()
        self._waiters = []
        self._wake_delivery()
        self.mailbox.fail(self.peer, error)
        link, self.link = self.link, None
        if self._on_failed is not None:
            self._on_failed(self, error)
        if link is not None:
            link.abandon(error)

    # ----- receiving --------------------------------------------------------------

    def data_received(self, nbytes: int) -> None:
        """Count one data record (``nbytes`` > 0) and acknowledge when due."""
        if nbytes:
            self.received += 1
            self._ack_bytes += nbytes
        if not self.resumable or self.link is None or self._ack_sent == self.received:
            return
        due = self._ack_bytes >= ACK_BYTES or self.received - self._ack_sent >= ACK_RECORDS
        if due or self.peer_closed:
            self.send_ack()
        elif self._ack_timer is None:
            self._ack_timer = self.loop.call_later(ACK_DELAY_S, self.send_ack)

    def send_ack(self) -> None:
        """Tell the peer how many data records arrived (it may drop them from its buffer)."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self.link is None or self._ack_sent == self.received:
            return
        self._ack_sent, self._ack_bytes = self.received, 0
        self.link.write_control(framing.ACK, ACK_BODY.pack(self.received))

    def acknowledged(self, count: int) -> None:
        """The peer has the first ``count`` data records: drop them, wake waiting senders."""
        if count > self.sent:
            raise LinkBrokenError(self.peer, f"acknowledged record {count - 1}, "
                                  f"but only {self.sent} were sent")
        while self.unacked and self.unacked[0][0] < count:
            _, rtype, size, payload, cipher = self.unacked.popleft()
            self.unacked_bytes -= size
            if cipher is not None and len(self._spare) < SPARE_CHUNKS:
                body = payload[-1]  # received by the peer, so the socket is done with it
                if isinstance(body, bytearray) and len(body) == CHUNK_SIZE + 16:
                    self._spare.append(body)
        self.wake()
        self._wake_delivery()

    def _wake_delivery(self) -> None:
        waiters, self._delivery = self._delivery, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def on_peer_close(self, error: PeerDisconnectedError) -> None:
        self.peer_closed = True
        self.close_error = error
        self.wake()
        self._wake_delivery()

    # ----- sending ------------------------------------------------------------------

    def check_usable(self) -> None:
        if self.error is not None:
            raise self.error
        if self.close_error is not None:
            raise self.close_error
        if self.closed:
            raise PeerDisconnectedError(self.peer, "link is closed")

    async def send(self, tag: str, obj: Any) -> None:
        """Queue one message; waits only when the link is backed up or down."""
        self.check_usable()
        self.stats.on_send(0, 1)
        if codec.is_raw_array(obj):
            arr = np.ascontiguousarray(obj)
            header = codec.raw_array_header(tag, arr)
            owned = not np.may_share_memory(arr, obj)  # our own contiguous copy
            await self._send_large(codec.pack(header), arr.reshape(-1).view(np.uint8).data,
                                   owned)
            return
        data = codec.pack([tag, codec.KIND_INLINE, obj])
        if len(data) > codec.RAW_ARRAY_THRESHOLD:
            announce = codec.pack([tag, codec.KIND_PACKED_BLOB, len(data)])
            await self._send_large(announce, memoryview(data), owned=True)
            return
        self._enqueue(data)
        if self.backed_up():
            await self.drain()

    def emit(self, rtype: int, plain: bytes | memoryview, owned: bool = True) -> None:
        """Number one data record, write it if connected, keep it until acknowledged.

        ``owned``: nobody else can change ``plain`` (bytes, or a buffer the session made),
        so a reference to it is kept. Otherwise ``plain`` is the caller's memory, which it
        may reuse once ``send`` returns: what is kept is then the sealed record the
        connection wrote (the ciphertext is ours, no copy), or a copy when no connection
        is up."""
        self.sent += 1
        out = None
        if self.resumable and not owned and len(plain) == CHUNK_SIZE:
            out = self._spare.pop() if self._spare else bytearray(CHUNK_SIZE + 16)
        sealed = self.link.write_data(rtype, plain, out) if self.link is not None else None
        if not self.resumable:
            return
        size = len(plain)
        if owned or sealed is None:
            kept = plain if owned else bytes(plain)
            self.unacked.append((self.sent - 1, rtype, size, kept, None))
        else:
            self.unacked.append((self.sent - 1, rtype, size, sealed[1], sealed[0]))
        self.unacked_bytes += size
        self.peak_unacked_bytes = max(self.peak_unacked_bytes, self.unacked_bytes)

    @staticmethod
    def _resend(link: Link, kept: Kept) -> Kept:
        """Write one unacknowledged record again on ``link``, under its keys."""
        seq, rtype, size, payload, cipher = kept
        if cipher is None:
            assert not isinstance(payload, tuple)
            plain = payload
        else:
            assert isinstance(payload, tuple)
            plain = cipher.recover(payload)
        sealed = link.write_data(rtype, plain)
        if sealed is None:
            return seq, rtype, size, plain, None
        return seq, rtype, size, sealed[1], sealed[0]

    def _enqueue(self, item: bytes) -> None:
        self._batch.append(item)
        self._batch_bytes += len(item)
        if self._batch_bytes >= BATCH_LIMIT:
            self.flush_batch()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush_batch)

    def flush_batch(self, force: bool = False) -> None:
        self._flush_scheduled = False
        if not self._batch or self.error is not None or (self._raw_active and not force):
            return
        plain = b"".join(self._batch)
        self._batch.clear()
        self._batch_bytes = 0
        self.emit(framing.BATCH, plain)

    async def _send_large(self, header_item: bytes, payload: memoryview,
                          owned: bool) -> None:
        async with self._raw_lock:
            self.check_usable()
            self._raw_active = True
            try:
                self._batch.append(header_item)
                self.flush_batch(force=True)
                for offset in range(0, len(payload), CHUNK_SIZE):
                    self.emit(framing.CHUNK, payload[offset : offset + CHUNK_SIZE], owned)
                    if self.backed_up():
                        await self.drain()
            finally:
                self._raw_active = False
            self.flush_batch()

    def backed_up(self) -> bool:
        """True while a sender should wait: buffer full, socket backed up, or no connection."""
        if self.resumable and self.unacked_bytes > self.buffer_bytes:
            return True
        link = self.link
        if link is None:
            return self.resumable and self.error is None
        return link.backed_up()

    def wake(self) -> None:
        if self.backed_up() and self.error is None:
            return
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def drain(self) -> None:
        while self.backed_up() and self.error is None:
            fut: asyncio.Future[None] = self.loop.create_future()
            self._waiters.append(fut)
            await fut
        if self.error is not None:
            raise self.error

    async def flush(self) -> None:
        """Hand every queued record to the socket (and through the WAN shaper)."""
        self.flush_batch()
        if self.link is not None:
            await self.link.wait_shaped()
        if not self.peer_closed:
            await self.drain()

    # ----- shutdown -------------------------------------------------------------------

    async def close(self, timeout: float = 5.0, reason: str | None = None) -> None:
        """Orderly close: flush, send CLOSE (waiting, within the grace period, until the
        peer has every record) or ABORT with ``reason``; then close the connection."""
        if self.closed:
            return
        usable = self.error is None and not self.peer_closed
        if usable and reason is None:
            async with self._raw_lock:
                self.flush_batch()
                self.emit(framing.CLOSE, b"")
            await self._await_delivery(max(timeout, self.grace_s if self.resumable else 0))
        elif usable and self.link is not None:
            self.flush_batch()
            self.link.write_control(framing.ABORT, reason.encode() if reason else b"")
        elif usable and self.resumable and reason is not None:
            await self._hold_abort(reason)
        self.closed = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        link = self.link
        if link is not None:
            await link.close_transport(timeout)

    async def _hold_abort(self, reason: str) -> None:
        """Stopping with an error while the link is down: keep the ABORT until the link is
        resumed, at most until the grace period ends (the peer waits that long anyway),
        so the peer fails at once with our reason rather than later with only "not
        restored". Meanwhile the dialer keeps redialling and the listener listening."""
        if self._grace is None:
            return
        self.held_abort = reason
        left = self._grace.when() - self.loop.time()
        event(logging.WARNING, "link.abort_held", peer=self.peer, reason=reason,
              within_s=round(max(left, 0.0), 1))
        while self.link is None and self.error is None:
            fut: asyncio.Future[None] = self.loop.create_future()
            self._delivery.append(fut)
            await fut

    async def _await_delivery(self, timeout: float) -> None:
        """Wait until the peer acknowledged everything (or closed, or the session failed)."""
        deadline = self.loop.time() + timeout
        while (self.resumable and self.unacked and not self.peer_closed
               and self.error is None and self.loop.time() < deadline):
            fut: asyncio.Future[None] = self.loop.create_future()
            self._delivery.append(fut)
            try:
                await asyncio.wait_for(fut, max(deadline - self.loop.time(), 0.001))
            except TimeoutError:
                return
        if self.link is not None:
            await self.link.wait_shaped()


def _bare(error: BaseException | None) -> str:
    """An error's text without the ``link to P:`` prefix (the new error adds its own)."""
    text = str(error)
    peer = getattr(error, "peer", None)
    prefix = f"link to {peer}: "
    return text[len(prefix):] if peer and text.startswith(prefix) else text
