"""WAN emulation: a bandwidth cap and an added one-way latency per link direction.

The shaper sits between a link and its transport. Each record is released
after the link has serialised it at the capped rate, then held for the added
latency, as a real slow link would. Benchmarks use it to report figures at
e.g. 100 Mbps / 50 ms beside the loopback ones.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from meshmpc.net.config import WanProfile


class WanShaper:
    """Delays writes to emulate a slow link; exposes its backlog for flow control.

    Records wait in one FIFO queue with their release times (which never
    decrease) and a single timer releases the head: per-record timers could
    fire out of order, since event loops round timer deadlines (uvloop to
    whole milliseconds), and a reordered record is a broken link.
    """

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
        self._queue: deque[tuple[float, bytes | bytearray]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.backlog = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def write(self, data: bytes | bytearray) -> None:
        """Queue ``data`` for delivery after serialisation time plus latency."""
        now = self._loop.time()
        start = max(now, self._link_free_at)
        serialise = len(data) / self._bytes_per_s if self._bytes_per_s else 0.0
        self._link_free_at = start + serialise
        self._queue.append((self._link_free_at + self._latency_s, data))
        self.backlog += len(data)
        self._idle.clear()
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        self._timer = self._loop.call_at(self._queue[0][0], self._release)

    def _release(self) -> None:
        """Deliver, in order, every record whose time has come; re-arm for the rest."""
        self._timer = None
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, data = self._queue.popleft()
            self.backlog -= len(data)
            self._write(data)
        if self._queue:
            self._arm()
        else:
            self._idle.set()
        self._on_drained()

    async def wait_idle(self) -> None:
        """Wait until every queued write has been handed to the transport."""
        await self._idle.wait()
