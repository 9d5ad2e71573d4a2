"""A fault-injecting TCP proxy on loopback, for hostile-network tests.

``FaultProxy(target_port, Fault(...))`` listens on a free port and forwards
every connection to ``127.0.0.1:target_port``, applying the fault to the
chosen direction: ``"up"`` is what the dialer sends, ``"down"`` what the
listener answers. Offsets count bytes of that direction of one connection
from its first byte (the handshake takes about 300 bytes each way, so an
offset above 400 hits encrypted records). The proxy runs its own event loop
in a thread, so the test process can run parties as subprocesses meanwhile.

Links resume after a cut (the dialer reconnects), so a cut is an outage: by
default the link stays down (every later connection is refused at once);
with ``restore_after_s`` connections are refused that long, then forwarded
(faulted again only while within the first ``connections``). A corruption
applies to each of the first ``connections`` connections at the same offset.
A black hole (``blackhole_at``) is a half-open link: from that offset the
connection's bytes vanish in both directions and neither end is closed; it
counts as a cut for ``restore_after_s``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    """What to do to one direction of every proxied connection (first ``connections``)."""

    direction: str = "up"
    delay_s: float = 0.0
    bytes_per_s: float | None = None
    drop: tuple[int, int] | None = None  # (offset, length): bytes silently removed
    duplicate: tuple[int, int] | None = None  # (offset, length): bytes sent twice
    corrupt_at: int | None = None  # this byte is XORed with 0x01
    cut_at: int | None = None  # the connection is closed once this many bytes passed
    blackhole_at: int | None = None  # from this offset both directions vanish, none closed
    connections: int = 1_000_000
    restore_after_s: float | None = None  # after a cut: down this long (None: for good)


@dataclass
class ProxyStats:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    faults_applied: list[str] = field(default_factory=list)
    first_fault_at: float | None = None  # time.monotonic() when a fault first fired
    cut_at: float | None = None  # time.monotonic() of the last cut
    refused: int = 0  # connections refused while the link was down


def _pieces(pos: int, data: bytes, fault: Fault) -> tuple[list[bytes], bool, list[str]]:
    """Split ``data`` (stream offset ``pos``) at fault boundaries and apply them."""
    end = pos + len(data)
    cuts = {pos, end}
    for rng in (fault.drop, fault.duplicate):
        if rng is not None:
            cuts |= {min(max(rng[0], pos), end), min(max(rng[0] + rng[1], pos), end)}
    if fault.cut_at is not None:
        cuts.add(min(max(fault.cut_at, pos), end))
    points = sorted(cuts)
    out, applied = [], []
    buf = bytearray(data)
    if fault.corrupt_at is not None and pos <= fault.corrupt_at < end:
        buf[fault.corrupt_at - pos] ^= 0x01
        applied.append(f"corrupt@{fault.corrupt_at}")
    for start, stop in zip(points, points[1:], strict=False):
        if fault.cut_at is not None and start >= fault.cut_at:
            applied.append(f"cut@{fault.cut_at}")
            return out, True, applied
        piece = bytes(buf[start - pos : stop - pos])
        if fault.drop is not None and fault.drop[0] <= start < sum(fault.drop):
            applied.append(f"drop@{start}")
            continue
        out.append(piece)
        if fault.duplicate is not None and fault.duplicate[0] <= start < sum(fault.duplicate):
            out.append(piece)
            applied.append(f"duplicate@{start}")
    cut = fault.cut_at is not None and end >= fault.cut_at
    if cut:
        applied.append(f"cut@{fault.cut_at}")
    return out, cut, applied


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target_port`` with a fault applied."""

    def __init__(self, target_port: int, fault: Fault | None = None) -> None:
        self.target_port = target_port
        self.fault = fault or Fault()
        self.stats = ProxyStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    def _down(self) -> bool:
        """True while a cut link is out (for good, or until ``restore_after_s`` passed)."""
        if self.stats.cut_at is None:
            return False
        restore = self.fault.restore_after_s
        return restore is None or time.monotonic() - self.stats.cut_at < restore

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down():
            self.stats.refused += 1
            writer.transport.abort()
            return
        self.stats.connections += 1
        faulty = self.stats.connections <= self.fault.connections
        for _ in range(250):  # the target may not be listening yet
            try:
                t_reader, t_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
                break
            except OSError:
                await asyncio.sleep(0.02)
        else:
            writer.close()
            return
        up = self.fault if faulty and self.fault.direction == "up" else None
        down = self.fault if faulty and self.fault.direction == "down" else None
        hole = [False]  # shared by both directions: once True, bytes vanish, nothing closes
        await asyncio.gather(self._pipe(reader, t_writer, up, "up", hole),
                             self._pipe(t_reader, writer, down, "down", hole),
                             return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    fault: Fault | None, direction: str, hole: list[bool]) -> None:
        pos = 0
        try:
            while data := await reader.read(1 << 16):
                if hole[0]:
                    continue
                if fault is not None and fault.blackhole_at is not None and \
                        pos + len(data) > fault.blackhole_at:
                    data = data[: max(fault.blackhole_at - pos, 0)]
                    hole[0] = True  # the rest of this read, and all later ones, vanish
                    self.stats.cut_at = self.stats.first_fault_at = time.monotonic()
                    self.stats.faults_applied.append(f"blackhole@{fault.blackhole_at}")
                pieces, cut = [data], False
                if fault is not None:
                    if fault.delay_s:
                        await asyncio.sleep(fault.delay_s)
                    pieces, cut, applied = _pieces(pos, data, fault)
                    if applied and self.stats.first_fault_at is None:
                        self.stats.first_fault_at = time.monotonic()
                    self.stats.faults_applied += applied
                pos += len(data)
                for piece in pieces:
                    writer.write(piece)
                    if direction == "up":
                        self.stats.bytes_up += len(piece)
                    else:
                        self.stats.bytes_down += len(piece)
                await writer.drain()
                if fault is not None and fault.bytes_per_s:
                    await asyncio.sleep(len(data) / fault.bytes_per_s)
                if cut:
                    self.stats.cut_at = time.monotonic()
                    writer.transport.abort()
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if not hole[0]:  # a black hole passes on no close either
                writer.close()
