"""WAN emulation: a bandwidth cap and an added one-way latency per link direction.

The shaper sits between a link and its transport. Each record is released
after the link has serialised it at the capped rate, then held for the added
latency, as a real slow link would. Benchmarks use it to report figures at
e.g. 100 Mbps / 50 ms beside the loopback ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from meshmpc.net.config import WanProfile


class WanShaper:
    """Delays writes to emulate a slow link; exposes its backlog for flow control."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        write: Callable[[bytes | bytearray], None],
        profile: WanProfile,
        on_drained: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._write = write
        self._bytes_per_s = profile.bytes_per_s
        self._latency_s = profile.latency_ms / 1000.0
        self._on_drained = on_drained
        self._link_free_at = 0.0
        self.backlog = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def write(self, data: bytes | bytearray) -> None:
        """Schedule ``data`` for delivery after serialisation time plus latency."""
        now = self._loop.time()
        start = max(now, self._link_free_at)
        serialise = len(data) / self._bytes_per_s if self._bytes_per_s else 0.0
        self._link_free_at = start + serialise
        self.backlog += len(data)
        self._idle.clear()
        self._loop.call_at(self._link_free_at + self._latency_s, self._deliver, data)

    def _deliver(self, data: bytes | bytearray) -> None:
        self.backlog -= len(data)
        self._write(data)
        if self.backlog == 0:
            self._idle.set()
        self._on_drained()

    async def wait_idle(self) -> None:
        """Wait until every scheduled write has been handed to the transport."""
        await self._idle.wait()
