"""Routes other nodes call (``/api/v1/peer/...``), every one authenticated by a signed request.

See :mod:`meshmpc.platform.peering` for the signature and
:mod:`meshmpc.platform.orchestrate` for what each message does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from meshmpc import __version__
from meshmpc.net.keys import public_key_from_b64
from meshmpc.platform import keyring
from meshmpc.platform.audit import AuditError, Checkpoint
from meshmpc.platform.models import Dataset, Job, Peer
from meshmpc.platform.orchestrate import Orchestrator
from meshmpc.platform.peering import PeerUnavailable, authenticate_peer

HEARTBEAT_S = 5.0
DOWN_AFTER_S = 15.0
ANCHOR_EVERY_BEATS = 12
"""Audit heads are exchanged with every peer once a minute, and at the end of every job."""


def peer_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/peer")

    def orchestrator(request: Request) -> Orchestrator:
        result: Orchestrator = request.app.state.orchestrator
        return result

    @router.post("/heartbeat")
    async def heartbeat(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        node = request.app.state.node
        revoked = payload.get("revoked") or []
        if isinstance(revoked, list) and revoked:  # the sender's own revoked keys
            keyring.apply_revocation(node, sender, [str(k) for k in revoked[:64]], sender,
                                     "revoked by its owner")
        with node.db.session() as s:
            peer = s.get(Peer, sender)
            if peer is not None:
                peer.last_seen, peer.status, peer.reason = time.time(), "up", None
        return {"party": node.party, "version": __version__}

    @router.post("/key-rotation")
    async def key_rotation(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        return keyring.apply_rotation(request.app.state.node, sender, payload)

    @router.post("/key-revocation")
    async def key_revocation(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        keys = payload.get("keys")
        if not isinstance(keys, list) or not 0 < len(keys) <= 64:
            raise keyring.KeyringError(f"{sender}: key-revocation needs a list of 1-64 keys")
        fresh = keyring.apply_revocation(request.app.state.node, sender,
                                         [str(k) for k in keys], sender,
                                         str(payload.get("reason") or "revoked by its owner"))
        return {"revoked": fresh}

    @router.post("/datasets")
    async def published(request: Request) -> dict[str, Any]:
        await authenticate_peer(request)
        node = request.app.state.node
        with node.db.session() as s:
            rows = s.scalars(select(Dataset).where(Dataset.published.is_(True))).all()
            return {"items": [{"name": d.name, "columns": d.columns, "row_count": d.row_count,
                               "description": d.description} for d in rows]}

    @router.post("/audit/anchor")
    async def anchor(request: Request) -> dict[str, Any]:
        """Keep the sender's signed audit head; answer with this node's own."""
        sender, payload = await authenticate_peer(request)
        node = request.app.state.node
        store_peer_anchor(node, sender, payload)
        result: dict[str, Any] = node.audit.checkpoint().to_json()
        return result

    @router.post("/purge")
    async def purge(request: Request) -> dict[str, Any]:
        """A data owner revoked a grant: delete this node's side of the jobs that used it."""
        from meshmpc.platform.retention import purge_jobs

        sender, payload = await authenticate_peer(request)
        node = request.app.state.node
        with node.db.session() as s:
            jobs = [str(j) for j in payload.get("jobs", [])[:10_000]
                    if (job := s.get(Job, str(j))) is not None and sender in
                    {p.party for p in job.parties}]
        deleted = purge_jobs(node, jobs, f"{sender}: {payload.get('reason')}", f"peer:{sender}")
        return {"purged": [d.job for d in deleted]}

    @router.post("/jobs")
    async def job(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        result: dict[str, Any] = await orchestrator(request).on_job(sender, payload)
        return result

    @router.post("/jobs/decision")
    async def decision(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        await orchestrator(request).on_decision(sender, payload)
        return {"ok": True}

    @router.post("/jobs/start")
    async def start(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        await orchestrator(request).on_start(sender, payload)
        return {"ok": True}

    @router.post("/jobs/status")
    async def status(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        await orchestrator(request).on_status(sender, payload)
        return {"ok": True}

    @router.post("/jobs/cancel")
    async def cancel(request: Request) -> dict[str, Any]:
        sender, payload = await authenticate_peer(request)
        await orchestrator(request).on_cancel(sender, payload)
        return {"ok": True}

    return router


def store_peer_anchor(node: Any, sender: str, payload: dict[str, Any]) -> None:
    """Anchor a checkpoint ``sender`` signed, under the key pinned for it."""
    checkpoint = Checkpoint.from_json(payload)
    if checkpoint.party != sender:
        raise AuditError(f"{sender} sent an audit head naming {checkpoint.party!r}")
    with node.db.session() as s:
        peer = s.get(Peer, sender)
        pinned = peer.public_key if peer else None
    if pinned is None:
        raise AuditError(f"no pinned key for {sender}")
    node.audit.store_anchor(checkpoint, public_key_from_b64(pinned))


async def exchange_anchors(orchestrator: Orchestrator, parties: list[str]) -> dict[str, str]:
    """Send this node's signed head to ``parties`` and anchor theirs; returns failures."""
    node = orchestrator.node
    mine = node.audit.checkpoint().to_json()
    with node.db.session() as s:
        urls = {p.party: p.api_url for p in s.scalars(select(Peer))}
    failures: dict[str, str] = {}
    for party in parties:
        try:
            theirs = await orchestrator.client.post(party, urls.get(party),
                                                    "/api/v1/peer/audit/anchor", mine)
            store_peer_anchor(node, party, theirs)
        except (PeerUnavailable, AuditError) as exc:
            failures[party] = str(exc)
    return failures


async def heartbeat_loop(orchestrator: Orchestrator) -> None:
    """Ping every peer; a peer silent for DOWN_AFTER_S is shown down, with the reason."""
    node = orchestrator.node
    beats = 0
    while True:
        with node.db.session() as s:
            peers = [(p.party, p.api_url) for p in s.scalars(select(Peer)) if p.api_url]
        await keyring.announce_pending(node, orchestrator)
        beat = {"revoked": keyring.own_revoked(node)}
        for party, url in peers:
            start = time.perf_counter()
            try:
                answer = await orchestrator.client.post(party, url, "/api/v1/peer/heartbeat",
                                                        beat)
                update = {"status": "up", "reason": None, "last_seen": time.time(),
                          "latency_ms": round((time.perf_counter() - start) * 1000, 1),
                          "software_version": answer.get("version")}
            except PeerUnavailable as exc:
                update = {"reason": str(exc)}
            with node.db.session() as s:
                peer = s.get(Peer, party)
                if peer is None:
                    continue
                for key, value in update.items():
                    setattr(peer, key, value)
                silent = time.time() - (peer.last_seen or 0)
                if "reason" in update and update["reason"] and silent > DOWN_AFTER_S:
                    peer.status = "down"
        beats += 1
        if beats % ANCHOR_EVERY_BEATS == 0:
            await exchange_anchors(orchestrator, [party for party, _ in peers])
        await asyncio.sleep(HEARTBEAT_S)  # cancelled at shutdown: let it end the loop
