"""Node-to-node control messages: requests signed with the node's identity key, checked on arrival.

Nodes tell each other about jobs (a submission, an approval, a start, step
status) and ping each other (heartbeats) over their HTTP APIs, under
``/api/v1/peer/``. Every such request carries::

    X-Meshmpc-Party:     the sending party id
    X-Meshmpc-Time:      unix seconds (float) when it was signed
    X-Meshmpc-Signature: base64 Ed25519 signature over
                         "meshmpc-peer-v1|" party "|" method "|" path "|" time "|" SHA-256(body)

The receiver checks the signature against the key pinned for that party in its
``peers`` table (the same key as in the cluster config) and refuses requests
older than ``MAX_SKEW_S`` or seen before (replays), before reading anything
else. The jobs themselves run over the encrypted mesh; this channel carries
only orchestration metadata, which the audit log records on both sides.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from typing import Any

import httpx
from fastapi import Request
from nacl.exceptions import BadSignatureError

from meshmpc.errors import MeshMPCError
from meshmpc.net.keys import Ed25519Signer, public_key_from_b64
from meshmpc.platform.auth import AuthError
from meshmpc.platform.keyring import accepted_keys
from meshmpc.platform.models import Peer

DOMAIN = b"meshmpc-peer-v1|"
MAX_SKEW_S = 60.0
MAX_BODY = 4 << 20
SEEN_CAP = 10_000


class PeerUnavailable(MeshMPCError, ConnectionError):
    """A peer's node did not answer, or answered with an error."""


def signed_message(party: str, method: str, path: str, ts: str, body: bytes) -> bytes:
    return b"|".join([DOMAIN + party.encode(), method.upper().encode(), path.encode(),
                      ts.encode(), hashlib.sha256(body).hexdigest().encode()])


def sign_headers(key: Ed25519Signer, party: str, method: str, path: str, body: bytes
                 ) -> dict[str, str]:
    ts = f"{time.time():.3f}"
    signature = key.sign(signed_message(party, method, path, ts, body)).signature
    return {"X-Meshmpc-Party": party, "X-Meshmpc-Time": ts,
            "X-Meshmpc-Signature": base64.b64encode(signature).decode(),
            "Content-Type": "application/json"}


class ReplayGuard:
    """Signatures seen within the skew window (bounded memory)."""

    def __init__(self) -> None:
        self.seen: OrderedDict[str, float] = OrderedDict()

    def check(self, signature: str, ts: float) -> None:
        cutoff = time.time() - 2 * MAX_SKEW_S
        while self.seen and (next(iter(self.seen.values())) < cutoff
                             or len(self.seen) > SEEN_CAP):
            self.seen.popitem(last=False)
        if signature in self.seen:
            raise AuthError("replayed peer request refused", status=401)
        self.seen[signature] = ts


async def authenticate_peer(request: Request) -> tuple[str, dict[str, Any]]:
    """The verified sending party and its JSON body, or AuthError before any parsing."""
    node = request.app.state.node
    party = request.headers.get("x-meshmpc-party", "")
    ts_text = request.headers.get("x-meshmpc-time", "")
    signature = request.headers.get("x-meshmpc-signature", "")
    if not party or not ts_text or not signature:
        raise AuthError("peer request without X-Meshmpc-Party/Time/Signature headers")
    declared = int(request.headers.get("content-length", "0") or 0)
    if declared > MAX_BODY:
        raise AuthError(f"peer request body over {MAX_BODY} bytes", status=413)
    with node.db.session() as s:
        peer = s.get(Peer, party)
        keys = accepted_keys(s, party, peer.public_key) if peer else None
    if keys is None:
        raise AuthError(f"unknown peer {party!r}: add it with PUT /api/v1/peers/{party}")
    if not keys:
        raise AuthError(f"peer {party}'s pinned key is revoked; pin its new key "
                        f"(PUT /api/v1/peers/{party})")
    try:
        ts = float(ts_text)
    except ValueError as exc:
        raise AuthError("bad X-Meshmpc-Time") from exc
    if abs(time.time() - ts) > MAX_SKEW_S:
        raise AuthError(f"peer request from {party} is {time.time() - ts:.0f} s old; "
                        "check both clocks (NTP)")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise AuthError(f"peer request body over {MAX_BODY} bytes", status=413)
    message = signed_message(party, request.method, request.url.path, ts_text, body)
    if not any(_signed_by(key, message, signature) for key in keys):
        raise AuthError(f"peer request claiming to be {party} has a bad signature (or one "
                        "by a revoked or expired key)")
    request.app.state.replays.check(signature, ts)
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise AuthError(f"peer request from {party}: body is not JSON", status=400) from exc
    return party, payload


def _signed_by(key: str, message: bytes, signature: str) -> bool:
    try:
        public_key_from_b64(key).verify(message, base64.b64decode(signature))
    except (BadSignatureError, ValueError):
        return False
    return True


class PeerClient:
    """Signed calls from this node to its peers' nodes."""

    def __init__(self, party: str, key: Ed25519Signer, timeout_s: float = 10.0) -> None:
        self.party = party
        self.key = key
        self.timeout_s = timeout_s

    async def post(self, peer: str, base_url: str | None, path: str,
                   payload: dict[str, Any]) -> dict[str, Any]:
        if not base_url:
            raise PeerUnavailable(f"{peer}: no api_url configured for this peer")
        body = json.dumps(payload, sort_keys=True).encode()
        headers = sign_headers(self.key, self.party, "POST", path, body)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(base_url.rstrip("/") + path, content=body,
                                             headers=headers)
        except httpx.HTTPError as exc:
            raise PeerUnavailable(f"{peer} at {base_url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise PeerUnavailable(f"{peer} refused {path}: {message}")
        result: dict[str, Any] = response.json()
        return result
