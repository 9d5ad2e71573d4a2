"""Demultiplexing: incoming messages queued per (peer, tag) until received.

Both meshes (TCP and in-memory) deliver into a :class:`Mailbox`; protocol code
awaits :meth:`Mailbox.get`. Concurrent protocol instances use distinct tags
and never see each other's messages. When a link fails, every pending and
future receive from that peer raises the link's error, so nothing hangs.

A long-running service (``meshmpc pir serve``) sees the same peer come back
in a new session after its link ended; :meth:`Mailbox.forget` clears what
the old session left behind (its failure and unread messages) so the new
session starts clean.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any


class Mailbox:
    """Queues of received messages keyed by (peer, tag), with waiting receivers.

    With ``spin_s > 0`` a receive that has to wait keeps the event loop
    polling (without sleeping in the kernel) for up to ``spin_s`` seconds.
    On this class of VM waking a sleeping process costs ~35 us per message,
    so a short spin cuts a round trip between processes from ~75 us of
    wake-ups to ~10 us, for at most ``spin_s`` of CPU per wait. A spin that
    does not catch the message (bulk transfers, a peer busy computing, or a
    peer process sharing this core, which the spin would only delay) turns
    spinning off for the next ``SPIN_BACKOFF`` waits.
    """

    SPIN_BACKOFF = 64

    def __init__(self, spin_s: float = 0.0) -> None:
        self._queues: dict[tuple[str, str], deque[Any]] = {}
        self._waiters: dict[tuple[str, str], deque[asyncio.Future[Any]]] = {}
        self._failed: dict[str, BaseException] = {}
        self._spin_s = spin_s
        self._spin_until = 0.0
        self._spinning = False
        self._waiting = 0
        self._spin_skip = 0

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
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._waiters.setdefault(key, deque()).append(fut)
        self._waiting += 1
        started = time.perf_counter()
        spin = self._spin_s > 0 and self._spin_skip == 0
        if spin:
            self._spin_until = started + self._spin_s
            if not self._spinning:
                self._spinning = True
                loop.call_soon(self._spin, loop)
        else:
            self._spin_skip = max(self._spin_skip - 1, 0)
        try:
            return await fut
        finally:
            self._waiting -= 1
            if spin and time.perf_counter() - started > self._spin_s:
                self._spin_skip = self.SPIN_BACKOFF
            waiters = self._waiters.get(key)
            if waiters is not None and not waiters:
                del self._waiters[key]

    def _spin(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep the loop polling (timeout 0) while a receive waits, up to the spin budget."""
        if self._waiting and time.perf_counter() < self._spin_until:
            loop.call_soon(self._spin, loop)
        else:
            self._spinning = False

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

    def failure(self, peer: str) -> BaseException | None:
        """The error that ended ``peer``'s link, or None while it is usable."""
        return self._failed.get(peer)

    def forget(self, peer: str) -> int:
        """Drop ``peer``'s recorded failure and its unread messages; return how many.

        For a peer that starts a new session after its link ended: without this,
        the old failure would fail every receive of the new session at once, and
        leftover messages of the old one could be mistaken for the new one's.
        Receivers still waiting for ``peer`` are left alone (a failed link has
        already failed them).
        """
        self._failed.pop(peer, None)
        stale = [key for key in self._queues if key[0] == peer]
        dropped = sum(len(self._queues.pop(key)) for key in stale)
        return dropped

    def pending(self) -> dict[tuple[str, str], int]:
        """Messages received but not yet taken, per (peer, tag); for diagnostics."""
        return {k: len(q) for k, q in self._queues.items()}
