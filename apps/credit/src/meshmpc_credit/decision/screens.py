"""Fraud screens: keyword PIR of each applicant against every partner's labelled risk list.

``SESSIONS`` :class:`~meshmpc.pir.client.PirClient` sessions per partner (each
under its own scoped message tags), opened once (the hint is downloaded at
start-up). Concurrent decisions' keys are coalesced: while the sessions are
busy new keys queue and go together in the next batch, so eight clients cost
at most ``SESSIONS`` PIR rounds per partner at a time, not eight. The partner sees
batch sizes only (see protocols/pir.md); the bank learns, per key, found or
not and the record (``list_type`` = reason code, ``risk_level``, ``listed_date``).

A partner that does not answer within ``timeout_s``, disconnects or breaks the
protocol is marked unavailable: every pending and later lookup reports it in
``unavailable``, so the decision becomes "refer: partner unavailable" - never
a silent "not listed".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshmpc.errors import MeshMPCError
from meshmpc.net import Context
from meshmpc.pir.client import PirClient

MAX_BATCH = 256
START_TIMEOUT_S = 60.0
SESSIONS = 4
"""PIR sessions per partner: a batch can go out while the previous one is answered
(less queueing behind a round trip on a WAN link). The partner serves as many."""
log = logging.getLogger("meshmpc_credit.screens")


@dataclass(frozen=True)
class ScreenResult:
    """Per partner the record found (None = not listed), and who could not answer."""

    records: dict[str, dict[str, Any] | None]
    unavailable: list[str]


class _PartnerLink:
    """One partner's PIR sessions and the queue of keys waiting for the next batch."""

    def __init__(self, ctx: Context, partner: str, timeout_s: float,
                 start_timeout_s: float, sessions: int) -> None:
        self.partner, self.timeout_s, self.start_timeout_s = partner, timeout_s, start_timeout_s
        self.clients = [PirClient(session_context(ctx, i), partner) for i in range(sessions)]
        self.down: str | None = None
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[dict[str, Any] | None]]] = \
            asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        try:  # the hint is the offline phase (megabytes): it gets the start-up timeout
            await asyncio.wait_for(asyncio.gather(*(c.refresh() for c in self.clients)),
                                   self.start_timeout_s)
        except (TimeoutError, MeshMPCError, OSError) as exc:
            self._mark_down(exc)
        self._workers = [asyncio.create_task(self._run(c), name=f"pir-{self.partner}-{i}")
                         for i, c in enumerate(self.clients)]

    async def lookup(self, key: str) -> dict[str, Any] | None:
        if self.down is not None:
            raise PartnerUnavailable(self.partner, self.down)
        future: asyncio.Future[dict[str, Any] | None] = \
            asyncio.get_running_loop().create_future()
        await self._queue.put((key, future))
        return await future

    async def _run(self, client: PirClient) -> None:
        """One session's loop: take every waiting key (up to MAX_BATCH), ask, answer."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            if self.down is not None:
                self._fail(batch)
                continue
            try:
                hits = await asyncio.wait_for(client.query([k for k, _ in batch]),
                                              self.timeout_s)
            except (TimeoutError, MeshMPCError, OSError) as exc:
                self._mark_down(exc)
                self._fail(batch)
                continue
            for (_, future), hit in zip(batch, hits, strict=True):
                if not future.done():
                    future.set_result(_record(hit.record) if hit.found else None)

    def _mark_down(self, exc: BaseException) -> None:
        self.down = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("partner %s unavailable: %s", self.partner, self.down)

    def _fail(self, batch: list[tuple[str, asyncio.Future[dict[str, Any] | None]]]) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(PartnerUnavailable(self.partner, self.down or "down"))

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        if self.down is None:
            with contextlib.suppress(TimeoutError, MeshMPCError, OSError):
                await asyncio.wait_for(asyncio.gather(*(c.close() for c in self.clients)),
                                       self.timeout_s)


def session_context(ctx: Context, index: int) -> Context:
    """The context of PIR session ``index`` (its own message tags): bank and partner agree."""
    return ctx.scope(f"screen-{index}")


class PartnerUnavailable(MeshMPCError, ConnectionError):
    """A partner's screen could not be obtained."""

    def __init__(self, partner: str, reason: str) -> None:
        self.partner = partner
        super().__init__(f"partner {partner} unavailable: {reason}")


def _record(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"value": value}


class PartnerScreens:
    """The bank's screens against ``partners`` over ``ctx``."""

    def __init__(self, ctx: Context, partners: Sequence[str], timeout_s: float = 2.0,
                 start_timeout_s: float = START_TIMEOUT_S, sessions: int = SESSIONS) -> None:
        self.links = {p: _PartnerLink(ctx, p, timeout_s, start_timeout_s, sessions)
                      for p in partners}

    async def start(self) -> None:
        """Download every partner's hint (parameters) once."""
        await asyncio.gather(*(link.start() for link in self.links.values()))

    async def lookup(self, key: str) -> ScreenResult:
        """Every partner's answer for ``key`` (concurrently)."""
        partners = list(self.links)
        answers = await asyncio.gather(*(self.links[p].lookup(key) for p in partners),
                                       return_exceptions=True)
        records: dict[str, dict[str, Any] | None] = {}
        unavailable = []
        for partner, answer in zip(partners, answers, strict=True):
            if isinstance(answer, PartnerUnavailable):
                unavailable.append(partner)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                records[partner] = answer
        return ScreenResult(records, unavailable)

    async def close(self) -> None:
        """End every session (the partners' servers stop serving this bank)."""
        await asyncio.gather(*(link.close() for link in self.links.values()))
