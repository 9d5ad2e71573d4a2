"""A party's coordinator: items (buckets, row partitions) spread over its Ray workers.

Both parties' coordinators run :func:`run_on_ray` in step over their
identity-authenticated link. Per attempt they split the unfinished items into
the same contiguous groups, start one fresh worker per group, and exchange a
signed-for-by-the-link :class:`~meshmpc.scale.pair.Offer` per worker (its new
public key, address, attempt and items); worker k of each party then runs its
group with worker k of the other. After the attempt the coordinators exchange
the items each side finished; an item finished on both sides is done, every
other one (whichever side failed) is tried again by both with attempt + 1
and fresh keys. Items never run twice once done, and the run fails with
:class:`ScaleError` when an item fails ``max_attempts`` times or a worker fails
with an error that is not a lost link or a lost worker (bad input, say).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from meshmpc.net.context import Context
from meshmpc.net.mesh import SubgroupMesh
from meshmpc.net.relay import InboundRelay
from meshmpc.net.tcp import TcpMesh
from meshmpc.scale.options import (
    RayOptions,
    ScaleConfigError,
    ScaleError,
    connect_ray,
    require_ray,
)
from meshmpc.scale.pair import Offer, pair_config
from meshmpc.scale.worker import PairWork, PairWorker, marker_path, read_marker


@dataclass
class ScaleReport:
    """What a scaled-out run did: workers, attempts, retries and worker memory."""

    workers: int
    attempts: int = 0
    retries: list[dict[str, Any]] = field(default_factory=list)
    worker_peak_rss_mb: list[float] = field(default_factory=list)
    worker_bytes_sent: int = 0
    worker_bytes_received: int = 0
    relayed_links: int = 0
    start_s: float = 0.0
    """Seconds spent starting workers (actors up, keys made, offers exchanged)."""
    run_s: float = 0.0
    """Seconds from the workers' start of work until the last one finished."""
    results: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-friendly part of the report (results stay with the caller)."""
        return {"workers": self.workers, "attempts": self.attempts, "retries": self.retries,
                "worker_peak_rss_mb": self.worker_peak_rss_mb,
                "worker_bytes_sent": self.worker_bytes_sent,
                "worker_bytes_received": self.worker_bytes_received,
                "relayed_links": self.relayed_links, "start_s": round(self.start_s, 3),
                "run_s": round(self.run_s, 3)}

    def add_worker(self, result: dict[str, Any]) -> None:
        """Count a finished worker's memory and traffic."""
        self.worker_peak_rss_mb.append(float(result["peak_rss_mb"]))
        self.worker_bytes_sent += int(result["bytes_sent"])
        self.worker_bytes_received += int(result["bytes_received"])


@dataclass
class _Round:
    attempt: int
    groups: list[list[int]]
    failures: list[str] = field(default_factory=list)


def split_groups(items: list[int], workers: int) -> list[list[int]]:
    """``items`` in at most ``workers`` contiguous groups of near-equal size (none empty)."""
    count = min(workers, len(items))
    size, extra = divmod(len(items), count) if count else (0, 0)
    groups, start = [], 0
    for k in range(count):
        end = start + size + (1 if k < extra else 0)
        groups.append(items[start:end])
        start = end
    return groups


async def run_on_ray(ctx: Context, peer: str, items: list[int], work: PairWork,
                     options: RayOptions, quiet: bool = False) -> ScaleReport:
    """Run every item on worker pairs of this party's and ``peer``'s Ray clusters.

    With ``options.relay`` the partner's workers reach ours through this party's
    own listening port (:mod:`meshmpc.net.relay`), never through the workers' ports.
    """
    ray = require_ray(ctx.party)
    connect_ray(ray, options)
    relay = install_relay(ctx) if options.relay else None
    try:
        report = await _run_all(ray, ctx, peer, items, work, options, quiet, relay)
    finally:
        if relay is not None:
            relay.mesh.inbound_relay = None
    report.relayed_links = relay.relayed if relay is not None else 0
    return report


def install_relay(ctx: Context) -> InboundRelay:
    """An :class:`InboundRelay` on the listener of this party's mesh (a TCP mesh)."""
    mesh = ctx.mesh
    while isinstance(mesh, SubgroupMesh):
        mesh = mesh.base
    if not isinstance(mesh, TcpMesh):
        raise ScaleConfigError(f"party {ctx.party}: ray.relay needs the TCP mesh (one inbound "
                               f"port per node); this job runs over {type(mesh).__name__}")
    entry = mesh.config.party(ctx.party)
    relay = InboundRelay(mesh, (entry.host, entry.port))
    mesh.inbound_relay = relay
    return relay


async def _run_all(ray: ModuleType, ctx: Context, peer: str, items: list[int], work: PairWork,
                   options: RayOptions, quiet: bool, relay: InboundRelay | None) -> ScaleReport:
    nonce, workers = await _agree(ctx, peer, options, len(items))
    report = ScaleReport(workers)
    pending = list(items)
    work.done_dir.mkdir(parents=True, exist_ok=True)
    while pending:
        if report.attempts >= options.max_attempts:
            raise ScaleError(f"party {ctx.party}: items {_span(pending)} failed on all "
                             f"{options.max_attempts} attempts; last failures: "
                             f"{report.retries[-1]['reasons'] if report.retries else '-'}")
        rnd = _Round(report.attempts, split_groups(pending, workers))
        for item in pending:
            marker_path(work.done_dir, item).unlink(missing_ok=True)
        for result in await _attempt(ray, ctx, peer, nonce, rnd, work, options, relay,
                                     report):
            report.add_worker(result)
        pending = await _settle(ctx, peer, pending, work, report, rnd, quiet)
        report.attempts += 1
    return report


async def _agree(ctx: Context, peer: str, options: RayOptions,
                 count: int) -> tuple[str, int]:
    """A job nonce both contributed to, and the pair count (the smaller wish, <= items)."""
    mine = {"nonce": os.urandom(16).hex(), "workers": options.workers}
    theirs = await ctx.exchange(peer, "scale/hello", mine)
    if not isinstance(theirs, dict) or not isinstance(theirs.get("workers"), int):
        raise ScaleError(f"party {ctx.party}: {peer} sent a malformed scale-out hello")
    both = sorted([str(mine["nonce"]), str(theirs.get("nonce"))])
    nonce = hashlib.sha256("|".join(both).encode()).hexdigest()[:32]
    return nonce, max(1, min(options.workers, int(theirs["workers"]), count))


async def _attempt(ray: ModuleType, ctx: Context, peer: str, nonce: str, rnd: _Round,
                   work: PairWork, options: RayOptions,
                   relay: InboundRelay | None, report: ScaleReport) -> list[dict[str, Any]]:
    """One attempt: start the workers, exchange offers, run; the finished workers'
    results (failures are kept in ``rnd``)."""
    actor_class = ray.remote(PairWorker)
    fingerprints: list[bytes] = []
    actors = [actor_class.options(num_cpus=options.cpus, max_restarts=0,
                                  max_task_retries=0).remote(ctx.party)
              for _ in rnd.groups]
    clock = time.perf_counter()
    try:
        started = await asyncio.to_thread(_start, ray, actors, options, ctx.party)
        mine = [_offer(ctx, k, rnd, started[k], relay) for k in range(len(rnd.groups))]
        theirs = await ctx.exchange(peer, f"scale/offers/{rnd.attempt}",
                                    [o.to_wire() for o in mine])
        partner = _check_offers(theirs, peer, rnd)
        if relay is not None:
            for k in range(len(mine)):
                fingerprint = pair_config(nonce, _order(ctx, peer), mine[k], partner[k]).fingerprint
                relay.add(fingerprint, (started[k]["host"], int(started[k]["port"])))
                fingerprints.append(fingerprint)
        report.start_s += time.perf_counter() - clock
        clock = time.perf_counter()
        refs = [actors[k].run.remote(nonce, _order(ctx, peer), mine[k].to_wire(),
                                     partner[k].to_wire(), work, options.link_timeout_s,
                                     relay is not None)
                for k in range(len(rnd.groups))]
        results = await _collect(ray, ctx, peer, actors, refs, rnd)
        report.run_s += time.perf_counter() - clock
        return results
    finally:
        if relay is not None:
            for fingerprint in fingerprints:
                relay.remove(fingerprint)
        for actor in actors:
            ray.kill(actor)


def _order(ctx: Context, peer: str) -> list[str]:
    return [p for p in ctx.parties if p in (ctx.party, peer)]


def _start(ray: ModuleType, actors: list[Any], options: RayOptions,
           party: str) -> list[dict[str, Any]]:
    """Every worker's key and address; a cluster that cannot host them all is an error
    naming the party (both parties reserve all their workers before any pair connects,
    so a small cluster never leaves a pair waiting for a worker that cannot start)."""
    try:
        started: list[dict[str, Any]] = ray.get([a.prepare.remote() for a in actors],
                                                timeout=options.start_timeout_s)
    except ray.exceptions.GetTimeoutError as exc:
        raise ScaleError(
            f"party {party}: its Ray cluster did not start {len(actors)} workers of "
            f"{options.cpus:g} CPU within {options.start_timeout_s:g} s (the cluster has "
            f"{ray.cluster_resources().get('CPU', 0):g} CPUs): lower ray.workers or "
            f"ray.cpus, or add nodes") from exc
    return started


def _offer(ctx: Context, worker: int, rnd: _Round, started: dict[str, Any],
           relay: InboundRelay | None) -> Offer:
    host, port = started["host"], started["port"]
    if relay is not None:
        host, port = relay.public_address
    return Offer(ctx.party, worker, rnd.attempt, tuple(rnd.groups[worker]),
                 started["public_key"], host, int(port))


def _check_offers(theirs: Any, peer: str, rnd: _Round) -> list[Offer]:
    """The partner's offers, refused unless they match our groups and attempt exactly."""
    if not isinstance(theirs, list) or len(theirs) != len(rnd.groups):
        raise ScaleError(f"{peer} offered {len(theirs) if isinstance(theirs, list) else 0} "
                         f"workers for attempt {rnd.attempt}, we start {len(rnd.groups)}")
    offers = []
    for k, doc in enumerate(theirs):
        try:
            offer = Offer.from_wire(doc, peer)
        except ValueError as exc:
            raise ScaleError(str(exc)) from exc
        wanted = (peer, k, rnd.attempt, tuple(rnd.groups[k]))
        if (offer.party, offer.worker, offer.attempt, offer.items) != wanted:
            raise ScaleError(f"{peer}'s offer for worker {k} is for party {offer.party}, "
                             f"attempt {offer.attempt}, items {_span(list(offer.items))}; "
                             f"expected attempt {rnd.attempt}, items {_span(rnd.groups[k])}")
        offers.append(offer)
    return offers


async def _collect(ray: ModuleType, ctx: Context, peer: str, actors: list[Any],
                   refs: list[Any], rnd: _Round) -> list[dict[str, Any]]:
    """Wait for every worker; keep lost workers and lost links as failures to retry,
    and stop the run on any other failure (bad input: retrying cannot help).

    A worker that fails is named to the partner's coordinator at once, which stops
    its worker of that pair (else it would wait out its link timeout for a partner
    that is gone); the partner does the same for us.
    """
    tag = f"scale/lost/{rnd.attempt}"
    listener = asyncio.create_task(_stop_named_workers(ray, ctx, peer, tag, actors))
    finished: list[dict[str, Any]] = []
    fatal = None
    waiting = dict(enumerate(refs))
    try:
        while waiting:
            ready, _ = await asyncio.to_thread(ray.wait, list(waiting.values()), num_returns=1)
            k = next(i for i, ref in waiting.items() if ref == ready[0])
            del waiting[k]
            result, failure = _outcome(ray, ready[0], k, rnd)
            if result is not None:
                finished.append(result)
                continue
            await ctx.send(peer, tag, k)
            if failure is not None:
                fatal = fatal or ScaleError(f"party {ctx.party}: {failure}")
        await ctx.send(peer, tag, -1)
        await listener
    finally:
        listener.cancel()
    if fatal is not None:
        raise fatal
    return finished


def _outcome(ray: ModuleType, ref: Any, k: int,
             rnd: _Round) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None) for a finished worker; (None, None) for a failure to retry (noted
    in ``rnd``); (None, message) for a failure that must stop the run."""
    where = f"worker {k} (items {_span(rnd.groups[k])})"
    try:
        result: dict[str, Any] = ray.get(ref)
    except ray.exceptions.RayActorError as exc:
        rnd.failures.append(f"{where} was lost: {type(exc).__name__}")
        return None, None
    if "failed" not in result:
        return result, None
    if result["retryable"]:
        rnd.failures.append(f"{where} lost its partner link: {result['failed']}: "
                            f"{result['message']}"[:300])
        return None, None
    return None, f"{where} failed: {result['failed']}: {result['message']}"


async def _stop_named_workers(ray: ModuleType, ctx: Context, peer: str, tag: str,
                              actors: list[Any]) -> None:
    """Stop our worker of each pair the partner reports failed, until it reports the end."""
    while True:
        k = await ctx.recv(peer, tag)
        if not isinstance(k, int) or k < 0:
            return
        if k < len(actors):
            ray.kill(actors[k])


async def _settle(ctx: Context, peer: str, pending: list[int], work: PairWork,
                  report: ScaleReport, rnd: _Round, quiet: bool) -> list[int]:
    """Items done on both sides leave ``pending``; the rest are reported and retried."""
    here = {i: r for i in pending if (r := read_marker(work.done_dir, i)) is not None}
    there = await ctx.exchange(peer, f"scale/done/{rnd.attempt}", sorted(here))
    if not isinstance(there, list) or not all(isinstance(i, int) for i in there):
        raise ScaleError(f"party {ctx.party}: {peer} sent a malformed list of finished items")
    finished = set(here) & set(there)
    report.results.update({i: here[i] for i in finished})
    left = [i for i in pending if i not in finished]
    if left:
        reasons = rnd.failures or [f"{peer}'s workers failed"]
        report.retries.append({"attempt": rnd.attempt, "items": left, "reasons": reasons})
        if not quiet:
            sys.stderr.write(f"scale {ctx.party}: attempt {rnd.attempt}: {len(left)} items "
                             f"({_span(left)}) not finished ({'; '.join(reasons)}); "
                             f"retrying them with fresh worker keys (attempt "
                             f"{rnd.attempt + 1})\n")
    return left


def _span(items: list[int]) -> str:
    if not items:
        return "none"
    if items == list(range(items[0], items[-1] + 1)):
        return f"{items[0]}-{items[-1]}" if len(items) > 1 else str(items[0])
    return ",".join(map(str, items[:8])) + ("..." if len(items) > 8 else "")
