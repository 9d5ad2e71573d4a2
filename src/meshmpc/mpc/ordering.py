"""Deterministic order for concurrent operations (hardening defect 9).

Parties run the same program, but when operations run concurrently
(``asyncio.gather``) their awaits complete in an order that depends on the
network, so any counter read after an await differs between parties. An
operation therefore takes a ticket when it starts (before any await), and
the :class:`Turnstile` runs operations one at a time in ticket order, which
is the same on every party.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Turnstile:
    """Runs operations one at a time in the order they started (took a ticket).

    Suite operations that run concurrently (``asyncio.gather``) ask the
    provider for correlations in their start order, which is the same on
    every party; the provider's own traffic and counters must follow that
    order too, not the order in which awaits happen to complete.
    """

    def __init__(self) -> None:
        self._issued = 0
        self._serving = 0
        self._changed = asyncio.Condition()

    def ticket(self) -> int:
        self._issued += 1
        return self._issued - 1

    async def run(self, ticket: int, work: Callable[[], Awaitable[T]]) -> T:
        async with self._changed:
            await self._changed.wait_for(lambda: self._serving == ticket)
        try:
            return await work()
        finally:
            async with self._changed:
                self._serving += 1
                self._changed.notify_all()
