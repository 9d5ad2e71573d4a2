"""One inbound port: a mesh's listener relays worker links by their HELLO fingerprint.

Banks often open one inbound port per node. With an :class:`InboundRelay`
installed on a :class:`~meshmpc.net.tcp.TcpMesh`, each new connection on the
mesh's port is held until its first record (the dialer's plaintext HELLO,
whose layout is fixed: :func:`meshmpc.net.secure.parse_hello`) has arrived:

- the mesh's own config fingerprint: the connection is handed, with the bytes
  read so far, to a normal mesh :class:`~meshmpc.net.link.Link` (a resumed link);
- a fingerprint registered with :meth:`InboundRelay.add` (a worker pair's
  config, which hashes the job, the worker and the attempt): the connection is
  relayed byte for byte to that worker's internal address;
- anything else, or no HELLO within the handshake timeout: dropped.

The relay holds no key and reads nothing after the HELLO: the workers'
handshake and encryption run end to end through it, so a relay (or whoever
reaches the port) cannot impersonate a worker or read its traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

from meshmpc.net import framing
from meshmpc.net.errors import NetworkError
from meshmpc.net.log import event
from meshmpc.net.secure import parse_hello

WRITE_HIGH = 4 * 1024 * 1024
"""Bytes queued towards one side before the other side's reading is paused."""


class InboundRelay:
    """Routes of one mesh's listener: pair fingerprint -> a worker's internal address."""

    def __init__(self, mesh: Any, public_address: tuple[str, int]) -> None:
        self.mesh = mesh
        self.public_address = public_address
        self.routes: dict[bytes, tuple[str, int]] = {}
        self.waiting: dict[_Sniffer, None] = {}  # no HELLO yet, oldest first
        self.relayed = 0
        self.handed = 0
        self.dropped = 0

    def add(self, fingerprint: bytes, address: tuple[str, int]) -> None:
        self.routes[fingerprint] = address

    def remove(self, fingerprint: bytes) -> None:
        self.routes.pop(fingerprint, None)

    def protocol(self) -> asyncio.Protocol:
        """The protocol for one new inbound connection (the mesh's server calls this).

        At most the mesh's ``max_handshakes`` connections wait for their HELLO at a
        time: the oldest is dropped for a new one, as the mesh does for its own."""
        sniffer = _Sniffer(self)
        self.waiting[sniffer] = None
        if len(self.waiting) > self.mesh.config.max_handshakes:
            next(iter(self.waiting))._drop("too many pending handshakes")
        return sniffer


class _Sniffer(asyncio.Protocol):
    """Reads the first record of an inbound connection, then routes it."""

    def __init__(self, relay: InboundRelay) -> None:
        self.relay = relay
        self.head = bytearray()
        self.transport: asyncio.Transport | None = None
        self.target: asyncio.Transport | None = None
        self.routed = False
        self.pending: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.relay.mesh.handshake_timeout_s, self._drop,
                                      "no handshake in time")

    def data_received(self, data: bytes) -> None:
        if self.target is not None:
            self.target.write(data)
            return
        if self.routed:
            self.pending.append(data)  # still connecting to the worker
            return
        self.head += data
        if len(self.head) < framing.HEADER_SIZE:
            return
        length, _, kind = framing.HEADER.unpack_from(self.head)
        if kind != framing.HELLO or length > framing.PREAUTH_MAX_RECORD:
            self._drop("not a meshmpc handshake")
            return
        if len(self.head) < framing.HEADER_SIZE + length:
            return
        try:
            hello = parse_hello(bytes(self.head[framing.HEADER_SIZE:framing.HEADER_SIZE + length]))
        except NetworkError as exc:
            self._drop(str(exc))
            return
        self._route(hello.fingerprint)

    def _route(self, fingerprint: bytes) -> None:
        self._settled()
        head, self.routed = bytes(self.head), True
        if fingerprint == self.relay.mesh.fingerprint:
            self._hand_to_mesh(head)
            return
        address = self.relay.routes.get(fingerprint)
        if address is None:
            self._drop("fingerprint of no mesh or worker pair here")
            return
        self.pending = [head]
        asyncio.ensure_future(self._connect(address))

    def _hand_to_mesh(self, head: bytes) -> None:
        """A connection of the mesh itself (a resumed link): a Link takes it over."""
        assert self.transport is not None
        link = self.relay.mesh._accept()  # noqa: SLF001 - the mesh's own accept path
        self.relay.handed += 1
        self.transport.set_protocol(link)
        link.connection_made(self.transport)
        view = memoryview(head)
        while view:
            buffer = link.get_buffer(len(view))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            link.buffer_updated(n)
            view = view[n:]

    async def _connect(self, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(lambda: _Back(self), *address)
        except OSError as exc:
            self._drop(f"worker at {address[0]}:{address[1]} unreachable: {exc}")
            return
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        for chunk in self.pending:
            transport.write(chunk)
        self.pending = []
        self.target = transport
        self.relay.relayed += 1

    def pause_writing(self) -> None:
        if self.target is not None:
            self.target.pause_reading()

    def resume_writing(self) -> None:
        if self.target is not None:
            self.target.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._settled()
        if self.target is not None:
            self.target.close()

    def _settled(self) -> None:
        """Routed, dropped or gone: no longer a connection waiting for its HELLO."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.relay.waiting.pop(self, None)

    def _drop(self, reason: str) -> None:
        self._settled()
        self.relay.dropped += 1
        event(logging.WARNING, "relay.dropped", party=self.relay.mesh.party, reason=reason)
        if self.transport is not None:
            self.transport.abort()


class _Back(asyncio.Protocol):
    """The relay's connection to the worker: bytes go back to the dialer."""

    def __init__(self, front: _Sniffer) -> None:
        self.front = front

    def data_received(self, data: bytes) -> None:
        if self.front.transport is not None:
            self.front.transport.write(data)

    def pause_writing(self) -> None:
        if self.front.transport is not None:
            self.front.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.front.transport is not None:
            self.front.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.front.transport is not None:
            with contextlib.suppress(Exception):
                self.front.transport.close()
