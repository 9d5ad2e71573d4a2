"""Record framing: how bytes on a link split into records.

Every record is ``header || body``. The 13-byte header is
``u32 body_len | u64 counter | u8 record_type`` (little endian) and is
authenticated as the AEAD's associated data; the body is the AEAD ciphertext
(plaintext during the two handshake records). :class:`RecordReader` cuts an
arbitrary byte stream into records, accepting the bytes in any slicing (one
byte at a time included), and refuses a length above its current limit
before buffering it.

Memory follows what has arrived, not what a header announces: the buffer
starts small (``PREAUTH_BUFFER`` bytes before authentication, where records
are capped at ``PREAUTH_MAX_RECORD``) and grows at most to twice the bytes
actually received plus one read's worth.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from meshmpc.net.errors import FrameTooLargeError

HEADER = struct.Struct("<IQB")
HEADER_SIZE = HEADER.size

# Record types.
HELLO = 1  # plaintext handshake: identity claim and ephemeral key
AUTH = 2  # plaintext handshake: signature over the transcript
BATCH = 3  # encrypted: a run of msgpack message items
CHUNK = 4  # encrypted: raw bytes of the message announced last
CLOSE = 5  # encrypted, empty: orderly shutdown
ABORT = 6  # encrypted: the sender stops with an error; body is its one-line reason
ACK = 7  # encrypted: u64 count of data records received in the session (cumulative)
SESSION = 8  # encrypted, once per connection after key confirmation: open or resume
PING = 9  # encrypted, empty: sent by a link that has heard nothing for keepalive_s
PONG = 10  # encrypted, empty: the answer to a PING
RECORD_TYPES = frozenset({HELLO, AUTH, BATCH, CHUNK, CLOSE, ABORT, ACK, SESSION, PING, PONG})
DATA_RECORDS = frozenset({BATCH, CHUNK, CLOSE})
"""Records of the session's reliable stream: numbered, kept until acknowledged, resent."""

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
PREAUTH_MAX_RECORD = 256
"""Largest record accepted before the peer is authenticated (HELLO is <= 134 bytes)."""
PREAUTH_BUFFER = 512
"""Initial buffer of a connection: all an unauthenticated stranger gets."""
MIN_FREE = 256 * 1024
"""Room for one socket read once authenticated."""


def pack_header(body_len: int, counter: int, record_type: int) -> bytes:
    """The 13 header bytes of one record."""
    return HEADER.pack(body_len, counter, record_type)


@dataclass(frozen=True)
class Record:
    """One complete record; ``body`` is a view valid only until the reader is fed again."""

    header: bytes
    counter: int
    record_type: int
    body: memoryview


class RecordReader:
    """Incremental record splitter designed for ``asyncio.BufferedProtocol``.

    ``get_buffer()`` hands out writable space at the tail of one internal
    buffer, ``buffer_updated(n)`` returns the records completed by those n
    bytes. Records are views into the buffer (no copy); the buffer is
    compacted only between calls, so a record's view must be consumed before
    the next ``get_buffer``. :meth:`set_limits` raises the record limit and
    read size once the peer is authenticated.
    """

    def __init__(
        self, max_frame: int = DEFAULT_MAX_FRAME, peer: str | None = None,
        initial: int = PREAUTH_BUFFER, min_free: int = MIN_FREE,
    ) -> None:
        self.max_frame = max_frame
        self.peer = peer
        self.min_free = min_free
        self._buf = bytearray(initial)
        self._start = 0
        self._end = 0
        self.bytes_read = 0

    def set_limits(self, max_frame: int, min_free: int = MIN_FREE) -> None:
        """Change the record limit and the read size (e.g. after authentication)."""
        self.max_frame = max_frame
        self.min_free = min_free

    def release(self) -> None:
        """Drop the buffer (a dead link keeps no memory)."""
        self._buf = bytearray()
        self._start = self._end = 0

    @property
    def capacity(self) -> int:
        return len(self._buf)

    @property
    def partial(self) -> bool:
        """True when bytes of an unfinished record are buffered."""
        return self._end > self._start

    def _needed(self) -> int:
        """Bytes the record at ``_start`` occupies in total (header alone if unknown)."""
        if self._end - self._start < HEADER_SIZE:
            return HEADER_SIZE
        body_len = int.from_bytes(self._buf[self._start : self._start + 4], "little")
        return HEADER_SIZE + min(body_len, self.max_frame)

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable space for the next bytes from the socket."""
        size = len(self._buf)
        free = size - self._end
        if (free < self.min_free and free <= size >> 1) or self._start + self._needed() > size:
            self._make_room()
        return memoryview(self._buf)[self._end :]

    def _make_room(self) -> None:
        """Move the unfinished record to the front; grow with the data received."""
        pending = self._end - self._start
        wanted = self._needed() + self.min_free
        allowed = max(2 * pending + self.min_free, HEADER_SIZE + PREAUTH_MAX_RECORD)
        capacity = max(min(wanted, allowed), pending + 1)
        if capacity > len(self._buf):
            new = bytearray(max(capacity, min(2 * len(self._buf), allowed)))
            new[:pending] = self._buf[self._start : self._end]
            self._buf = new
        elif self._start:
            self._buf[:pending] = self._buf[self._start : self._end]
        self._start, self._end = 0, pending

    def buffer_updated(self, nbytes: int) -> list[Record]:
        """Account ``nbytes`` written into the last buffer; return completed records."""
        self._end += nbytes
        self.bytes_read += nbytes
        records = []
        view = memoryview(self._buf)
        while self._end - self._start >= HEADER_SIZE:
            body_len, counter, rtype = HEADER.unpack_from(self._buf, self._start)
            if body_len > self.max_frame:
                raise FrameTooLargeError(
                    self.peer, f"frame of {body_len} bytes exceeds the limit of {self.max_frame}"
                )
            total = HEADER_SIZE + body_len
            if self._end - self._start < total:
                break
            header = bytes(view[self._start : self._start + HEADER_SIZE])
            body = view[self._start + HEADER_SIZE : self._start + total]
            records.append(Record(header, counter, rtype, body))
            self._start += total
        if self._start == self._end:
            self._start = self._end = 0
        return records

    def feed(self, data: bytes) -> list[tuple[bytes, int, int, bytes]]:
        """Feed bytes in any slicing; return completed records as copies (for tests)."""
        out = []
        pos = 0
        while pos < len(data):
            space = self.get_buffer()
            n = min(len(space), len(data) - pos)
            space[:n] = data[pos : pos + n]
            pos += n
            for r in self.buffer_updated(n):
                out.append((r.header, r.counter, r.record_type, bytes(r.body)))
        return out
