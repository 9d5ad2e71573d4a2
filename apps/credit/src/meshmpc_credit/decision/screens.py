"""Fraud screens: keyword PIR of each applicant against every partner's labelled risk list.

``SESSIONS`` :class:`~meshmpc.pir.client.PirClient` sessions per partner (each
under its own scoped message tags), opened once (the hint is downloaded at
start-up by the first session and shared by the others, :func:`refresh_shared`).
Concurrent decisions' keys are coalesced: while the sessions are busy new keys
queue and go together in the next batch, so eight clients cost at most
``SESSIONS`` PIR rounds per partner at a time, not eight. The partner sees
batch sizes only (see protocols/pir.md); the bank learns, per key, found or
not and the record (``list_type`` = reason code, ``risk_level``, ``listed_date``).

A partner that does not answer within ``timeout_s``, disconnects or breaks the
protocol is marked unavailable: every pending and later lookup reports it in
``unavailable``, so the decision becomes "refer: partner unavailable" - never
a silent "not listed". Meanwhile a recovery task retries after a back-off
(``retry_s``, doubling up to ``MAX_RETRY_S``): it ends the sessions' current
generation (a ``close`` on the old message tags, then ``next`` on the session's
control tag) and opens generation g+1 under fresh tags ``screen-<i>/g<g+1>``,
so a late answer to a timed-out request can never be read as the answer to a
new one. When every session of the new generation has its hint, the partner
is available again. The partner's side follows the generations
(:func:`serve_sessions`); ``next`` with ``stop`` ends it.

Purpose and consent travel with every batch: each lookup names its
:class:`Consent` (purpose and the applicant's consent reference), a batch
groups the keys of one purpose and carries the count and Merkle root of their
references (:func:`meshmpc.data.consent.consent_fields`). A partner whose node
refuses a batch (a grant's cap reached, no grant for the purpose, no consent)
is not down: the refusal is reported per lookup in ``refused`` with the node's
reason, and the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meshmpc.data.consent import ConsentError, consent_fields
from meshmpc.errors import MeshMPCError
from meshmpc.net import Context
from meshmpc.pir.client import PirClient
from meshmpc.pir.errors import LookupRefused
from meshmpc.pir.server import PirServer

MAX_BATCH = 256
START_TIMEOUT_S = 60.0
RETRY_S = 1.0
MAX_RETRY_S = 30.0
CONTROL = "next"
SESSIONS = 4
"""PIR sessions per partner: a batch can go out while the previous one is answered
(less queueing behind a round trip on a WAN link). The partner serves as many."""
log = logging.getLogger("meshmpc_credit.screens")


@dataclass(frozen=True)
class Consent:
    """Why a lookup is made and the applicant's consent reference (kept by the bank)."""

    purpose: str
    reference: str | None  # None: none given (a partner under grants refuses the lookup)


@dataclass(frozen=True)
class ScreenResult:
    """Per partner the record found (None = not listed), who could not answer, and who
    refused the lookup under its grants (partner -> the node's reason)."""

    records: dict[str, dict[str, Any] | None]
    unavailable: list[str]
    refused: dict[str, str] = field(default_factory=dict)


Pending = tuple[str, "Consent | None", "asyncio.Future[dict[str, Any] | None]"]


class _PartnerLink:
    """One partner's PIR sessions and the queue of keys waiting for the next batch."""

    def __init__(self, ctx: Context, partner: str, timeout_s: float,
                 start_timeout_s: float, sessions: int, retry_s: float = RETRY_S) -> None:
        self.ctx, self.partner, self.timeout_s = ctx, partner, timeout_s
        self.start_timeout_s, self.retry_s = start_timeout_s, retry_s
        self.generation = 0
        self.clients = self._open(0, sessions)
        self.down: str | None = None
        self.recoveries = 0
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._recovery: asyncio.Task[None] | None = None

    def _open(self, generation: int, sessions: int) -> list[PirClient]:
        return [PirClient(session_context(self.ctx, i, generation), self.partner)
                for i in range(sessions)]

    async def start(self) -> None:
        try:  # the hint is the offline phase (megabytes): it gets the start-up timeout
            await asyncio.wait_for(refresh_shared(self.clients), self.start_timeout_s)
        except (TimeoutError, MeshMPCError, OSError) as exc:
            self._mark_down(exc)
        self._workers = [asyncio.create_task(self._run(i), name=f"pir-{self.partner}-{i}")
                         for i in range(len(self.clients))]

    async def lookup(self, key: str, consent: Consent | None = None) -> dict[str, Any] | None:
        if self.down is not None:
            raise PartnerUnavailable(self.partner, self.down)
        future: asyncio.Future[dict[str, Any] | None] = \
            asyncio.get_running_loop().create_future()
        await self._queue.put((key, consent, future))
        return await future

    async def _run(self, index: int) -> None:
        """Session ``index``'s loop: take every waiting key (up to MAX_BATCH), ask, answer."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            for group in _by_purpose(batch):
                if self.down is not None:
                    self._fail(group)
                    continue
                await self._ask(index, group)

    async def _ask(self, index: int, group: list[Pending]) -> None:
        """One batch of one purpose: its consent fields, the query, the answers."""
        client = self.clients[index]
        consent = group[0][1]
        try:
            client.request_fields = _fields(consent, group)
            hits = await asyncio.wait_for(client.query([k for k, _, _ in group]),
                                          self.timeout_s)
        except (LookupRefused, ConsentError) as exc:  # refused under grants: not down
            log.info("partner %s refused %d lookups: %s", self.partner, len(group), exc)
            for _, _, future in group:
                if not future.done():
                    future.set_exception(ScreenRefused(self.partner, str(exc)))
            return
        except (TimeoutError, MeshMPCError, OSError) as exc:
            self._mark_down(exc)
            self._fail(group)
            return
        for (_, _, future), hit in zip(group, hits, strict=True):
            if not future.done():
                future.set_result(_record(hit.record) if hit.found else None)

    def _mark_down(self, exc: BaseException) -> None:
        if self.down is None:
            self.down = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("partner %s unavailable: %s; retrying in %.1f s", self.partner,
                        self.down, self.retry_s)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover(),
                                                 name=f"pir-{self.partner}-recover")

    async def _recover(self) -> None:
        """Retry with a doubling back-off until a new generation of sessions has its hints."""
        delay = self.retry_s
        while self.down is not None:
            await asyncio.sleep(delay)
            try:
                clients = await self._next_generation()
                await asyncio.wait_for(refresh_shared(clients), max(self.timeout_s, 1.0) * 5)
            except (TimeoutError, MeshMPCError, OSError) as exc:
                log.info("partner %s still unavailable (%s); next try in %.1f s",
                         self.partner, type(exc).__name__, min(2 * delay, MAX_RETRY_S))
                delay = min(2 * delay, MAX_RETRY_S)
                continue
            self.clients, self.down = clients, None
            self.recoveries += 1
            log.warning("partner %s available again (session generation %d)", self.partner,
                        self.generation)

    async def _next_generation(self) -> list[PirClient]:
        """End the current generation on the partner's side and name the next one."""
        old, self.generation = self.generation, self.generation + 1
        for i, client in enumerate(self.clients):
            await client.close()
            await control_context(self.ctx, i).send(self.partner, CONTROL,
                                                    {"generation": self.generation})
        log.debug("partner %s: sessions g%d -> g%d", self.partner, old, self.generation)
        return self._open(self.generation, len(self.clients))

    def _fail(self, batch: list[Pending]) -> None:
        for _, _, future in batch:
            if not future.done():
                future.set_exception(PartnerUnavailable(self.partner, self.down or "down"))

    async def close(self) -> None:
        """Stop the workers and end every session (the partner's serving then returns)."""
        for task in [*self._workers, *([self._recovery] if self._recovery else [])]:
            task.cancel()
        with contextlib.suppress(TimeoutError, MeshMPCError, OSError):
            await asyncio.wait_for(self._stop_sessions(), self.timeout_s)

    async def _stop_sessions(self) -> None:
        for i, client in enumerate(self.clients):
            await client.close()
            await control_context(self.ctx, i).send(self.partner, CONTROL, {"stop": True})


async def refresh_shared(clients: Sequence[PirClient]) -> None:
    """Download the partner's hint once, on the first session; the others share it (a
    hint is megabytes: at 10^6 firms 64 MiB, once instead of once per session)."""
    if clients:
        await clients[0].refresh()
        for client in clients[1:]:
            client.adopt(clients[0])


def session_context(ctx: Context, index: int, generation: int = 0) -> Context:
    """The context of PIR session ``index`` in ``generation`` (its own message tags)."""
    base = ctx.scope(f"screen-{index}")
    return base if generation == 0 else base.scope(f"g{generation}")


def control_context(ctx: Context, index: int) -> Context:
    """Where the bank tells session ``index``'s partner side what comes next."""
    return ctx.scope(f"screen-{index}").scope("control")


async def serve_sessions(ctx: Context, server: PirServer, bank: str, sessions: int) -> int:
    """Partner: serve the bank's ``sessions`` screen sessions through every generation."""
    async def one(index: int) -> int:
        served, generation = 0, 0
        while True:
            served += await server.serve(session_context(ctx, index, generation), bank)
            nxt = await control_context(ctx, index).recv(bank, CONTROL)
            if not isinstance(nxt, dict) or nxt.get("generation") != generation + 1:
                return served
            generation += 1

    return sum(await asyncio.gather(*(one(i) for i in range(sessions))))


def _by_purpose(batch: list[Pending]) -> list[list[Pending]]:
    """The batch split by purpose, and keys with a consent reference apart from those
    without: one batch carries one purpose and the references of all its keys."""
    groups: dict[tuple[str | None, bool], list[Pending]] = {}
    for item in batch:
        consent = item[1]
        group = (consent.purpose, consent.reference is not None) if consent else (None, False)
        groups.setdefault(group, []).append(item)
    return list(groups.values())


def _fields(consent: Consent | None, group: list[Pending]) -> dict[str, Any]:
    """The purpose and consent fields of one group's batch (see :func:`_by_purpose`)."""
    if consent is None:
        return {}
    if consent.reference is None:
        return {"purpose": consent.purpose}
    return consent_fields(consent.purpose, [c.reference for _, c, _ in group
                                            if c is not None and c.reference is not None])


class ScreenRefused(MeshMPCError, PermissionError):
    """A partner's node refused the lookup (its grant's caps, purpose or consent)."""

    def __init__(self, partner: str, reason: str) -> None:
        self.partner, self.reason = partner, reason
        super().__init__(f"partner {partner} refused the lookup: {reason}")


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
                 start_timeout_s: float = START_TIMEOUT_S, sessions: int = SESSIONS,
                 retry_s: float = RETRY_S) -> None:
        self.links = {p: _PartnerLink(ctx, p, timeout_s, start_timeout_s, sessions, retry_s)
                      for p in partners}

    async def start(self) -> None:
        """Download every partner's hint (parameters) once."""
        await asyncio.gather(*(link.start() for link in self.links.values()))

    async def lookup(self, key: str, consent: Consent | None = None) -> ScreenResult:
        """Every partner's answer for ``key`` (concurrently), asked under ``consent``."""
        partners = list(self.links)
        answers = await asyncio.gather(*(self.links[p].lookup(key, consent)
                                         for p in partners), return_exceptions=True)
        records: dict[str, dict[str, Any] | None] = {}
        unavailable, refused = [], {}
        for partner, answer in zip(partners, answers, strict=True):
            if isinstance(answer, PartnerUnavailable):
                unavailable.append(partner)
            elif isinstance(answer, ScreenRefused):
                refused[partner] = answer.reason
            elif isinstance(answer, BaseException):
                raise answer
            else:
                records[partner] = answer
        return ScreenResult(records, unavailable, refused)

    async def close(self) -> None:
        """End every session (the partners' servers stop serving this bank)."""
        await asyncio.gather(*(link.close() for link in self.links.values()))
