"""The node's key-custody API: see this node's and its peers' keys, rotate the node's
identity key online, revoke an old key of its own or a peer's key (security role)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from meshmpc.platform import keyring
from meshmpc.platform.api import node_of, requires
from meshmpc.platform.auth import Principal
from meshmpc.platform.models import Peer, PeerKey


class RotateBody(BaseModel):
    overlap_days: float = Field(7.0, gt=0, le=90, description="both keys accepted this long")
    pkcs11: str | None = Field(None, description="create the new key in this PKCS#11 token")


class RevokeBody(BaseModel):
    public_key: str
    reason: str | None = None


def keys_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/keys")
    def keys(request: Request, who: Principal = Depends(requires("datasets.read"))  # noqa: B008
             ) -> dict[str, Any]:
        node = node_of(request)
        pending = keyring.pending_rotation(node)
        with node.db.session() as s:
            peers: dict[str, dict[str, Any]] = {
                p.party: {"pinned": p.public_key, "status": p.status, "others": []}
                for p in s.scalars(select(Peer))}
            for row in s.scalars(select(PeerKey).order_by(PeerKey.recorded)):
                peers.setdefault(row.party, {"pinned": None, "status": None, "others": []})
                peers[row.party]["others"].append(
                    {"public_key": row.public_key, "state": row.state,
                     "valid_until": row.valid_until, "reason": row.reason})
        return {"party": node.party, "public_key": node.identity.public_b64,
                "in_token": node.identity.in_token, "revoked": keyring.own_revoked(node),
                "rotation_not_yet_told": pending["untold"] if pending else [],
                "peers": peers}

    @router.post("/keys/rotate")
    async def rotate(body: RotateBody, request: Request,
                     who: Principal = Depends(requires("keys.manage"))  # noqa: B008
                     ) -> dict[str, Any]:
        return await keyring.rotate_own_key(node_of(request), request.app.state.orchestrator,
                                            who.name, body.overlap_days * 86400.0, body.pkcs11)

    @router.post("/keys/revoke")
    async def revoke_own(body: RevokeBody, request: Request,
                         who: Principal = Depends(requires("keys.manage"))  # noqa: B008
                         ) -> dict[str, Any]:
        return await keyring.revoke_own_key(node_of(request), request.app.state.orchestrator,
                                            who.name, body.public_key, body.reason)

    @router.post("/peers/{party}/keys/revoke")
    def revoke_peer(party: str, body: RevokeBody, request: Request,
                    who: Principal = Depends(requires("keys.manage"))  # noqa: B008
                    ) -> dict[str, Any]:
        fresh = keyring.apply_revocation(node_of(request), party, [body.public_key], who.name,
                                         body.reason or f"revoked by {who.name}",
                                         allow_pinned=True)
        return {"party": party, "revoked": fresh}

    return router
