"""Demultiplexing: incoming messages queued per (peer, tag) until received.

Both meshes (TCP and in-memory) deliver into a :class:`Mailbox`; protocol code
awaits :meth:`Mailbox.get`. Concurrent protocol instances use distinct tags
and never see each other's messages. When a link fails, every pending and
future receive from that peer raises the link's error, so nothing hangs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Mailbox:
    """Queues of received messages keyed by (peer, tag), with waiting receivers."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], deque[Any]] = {}
        self._waiters: dict[tuple[str, str], deque[asyncio.Future[Any]]] = {}
        self._failed: dict[str, BaseException] = {}

    def deliver(self, peer: str, tag: str, obj: Any) -> None:
        """Hand one received message to its waiting receiver, or queue it."""
        key = (peer, tag)
        waiters = self._waiters.get(key)
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(obj)
                return
        self._queues.setdefault(key, deque()).append(obj)

    async def get(self, peer: str, tag: str) -> Any:
        """The next message from ``peer`` under ``tag`` (FIFO)."""
        key = (peer, tag)
        queue = self._queues.get(key)
        if queue:
            obj = queue.popleft()
            if not queue:
                del self._queues[key]
            return obj
        if peer in self._failed:
            raise self._failed[peer]
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, deque()).append(fut)
        try:
            return await fut
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None and not waiters:
                del self._waiters[key]

    def fail(self, peer: str, error: BaseException) -> None:
        """Fail every pending and future receive from ``peer`` with ``error``."""
        self._failed.setdefault(peer, error)
        for (p, _tag), waiters in list(self._waiters.items()):
            if p != peer:
                continue
            while waiters:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_exception(error)

    def pending(self) -> dict[tuple[str, str], int]:
        """Messages received but not yet taken, per (peer, tag); for diagnostics."""
        return {k: len(q) for k, q in self._queues.items()}
