"""Identity-key rotation and revocation between nodes.

Rotation (online, no downtime): the node makes a new key (a file, or inside its PKCS#11
token), tells every peer in a request signed with the *old* key that carries the new key,
the end of the overlap and a proof signed by the *new* key; each peer pins the new key and
keeps accepting the old one until the overlap ends. Then the node signs with the new key
(node-to-node requests, audit checkpoints, the jobs' mesh handshakes). A peer that was
unreachable is told again, with the old key, on each heartbeat until it confirms.

Revocation: a node revokes one of its own old keys (say it leaked) by telling every peer,
and repeats the list in every heartbeat, so each reachable peer refuses the key within one
heartbeat (5 s; the target is 60 s). A security officer can also revoke a peer's key
locally (told out of band). A revoked key is refused by node-to-node authentication and
written into every later job's cluster config as ``revoked_keys``, so mesh handshakes
refuse it too; the pinned key itself cannot be revoked by its owner (rotate first).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from sqlalchemy import select

from meshmpc.errors import MeshMPCError
from meshmpc.net.custody import Pkcs11Uri
from meshmpc.net.keys import IdentityKey, public_key_from_b64
from meshmpc.platform.models import Peer, PeerKey

ROTATION_DOMAIN = b"meshmpc-key-rotation-v1|"
MAX_OVERLAP_S = 90 * 86400.0
PENDING_FILE = "rotation-pending.json"
REVOKED_FILE = "revoked-own.json"
PEER_REVOCATIONS_FILE = "revoked-peers.txt"


class KeyringError(MeshMPCError, ValueError):
    """A rotation or revocation that cannot be applied (the message says why)."""


# ----- what a node accepts from its peers -------------------------------------------------

def accepted_keys(session: Any, party: str, pinned: str, now: float | None = None) -> list[str]:
    """The keys ``party`` may sign with: its pinned key and still-overlapping previous
    keys, minus revoked ones (empty when the pinned key itself was revoked locally)."""
    moment = time.time() if now is None else now
    rows = list(session.scalars(select(PeerKey).where(PeerKey.party == party)))
    revoked = {r.public_key for r in rows if r.state == "revoked"}
    keys = [pinned] + [r.public_key for r in rows if r.state == "previous"
                       and (r.valid_until or 0) > moment]
    return [k for k in keys if k not in revoked]


def is_revoked(session: Any, party: str, key: str) -> bool:
    row = session.get(PeerKey, (party, key))
    return row is not None and row.state == "revoked"


def revoked_keys(session: Any, parties: list[str]) -> list[str]:
    """Every revoked key of ``parties`` (for a job's cluster config)."""
    rows = session.scalars(select(PeerKey).where(PeerKey.party.in_(parties),
                                                 PeerKey.state == "revoked"))
    return sorted(r.public_key for r in rows)


def previous_keys(session: Any, party: str, now: float | None = None
                  ) -> tuple[list[str], float | None]:
    """``party``'s overlapping previous keys and the earliest end of their overlap."""
    moment = time.time() if now is None else now
    rows = [r for r in session.scalars(select(PeerKey).where(
        PeerKey.party == party, PeerKey.state == "previous")) if (r.valid_until or 0) > moment]
    revoked = set(revoked_keys(session, [party]))  # one query, not one per row
    rows = [r for r in rows if r.public_key not in revoked]
    return [r.public_key for r in rows], min((r.valid_until or 0 for r in rows), default=None)


def rotation_message(party: str, new_key: str, until: float) -> bytes:
    return ROTATION_DOMAIN + f"{party}|{new_key}|{until:.3f}".encode()


def apply_rotation(node: Any, sender: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A peer announced its new key (the request was signed with a key we accept)."""
    new_key, until = str(payload.get("new_key", "")), payload.get("until")
    if not isinstance(until, int | float) or not time.time() < until <= time.time() + (
            MAX_OVERLAP_S):
        raise KeyringError(f"{sender}: the overlap must end within {MAX_OVERLAP_S / 86400:.0f} "
                           "days from now")
    try:
        public_key_from_b64(new_key).verify(rotation_message(sender, new_key, float(until)),
                                            base64.b64decode(str(payload.get("proof", ""))))
    except (BadSignatureError, ValueError) as exc:
        raise KeyringError(f"{sender}: the new key's proof does not verify") from exc
    with node.db.session() as s:
        peer = s.get(Peer, sender)
        if peer is None:
            raise KeyringError(f"unknown peer {sender!r}")
        if s.get(PeerKey, (sender, new_key)) is not None:
            raise KeyringError(f"{sender}: that key was used before (revoked or rotated out)")
        if peer.public_key != new_key:
            old, peer.public_key = peer.public_key, new_key
            s.add(PeerKey(party=sender, public_key=old, state="previous", valid_until=until))
    node.audit.append("peer.key_rotated", sender, {"party": sender, "new_key": new_key,
                                                   "overlap_until": until})
    return {"party": node.party, "pinned": new_key}


def apply_revocation(node: Any, owner: str, keys: list[str], actor: str,
                     reason: str | None = None, allow_pinned: bool = False) -> list[str]:
    """Mark ``owner``'s ``keys`` revoked; returns the ones newly revoked. The owner itself
    may not revoke the key we pin for it (``allow_pinned`` is for a local officer)."""
    fresh = []
    with node.db.session() as s:
        peer = s.get(Peer, owner)
        if peer is None:
            raise KeyringError(f"unknown peer {owner!r}")
        for key in keys:
            _check_key(key, owner)
            if key == peer.public_key and not allow_pinned:
                raise KeyringError(f"{owner}: its pinned key cannot be revoked by itself; "
                                   "rotate to a new key first")
            row = s.get(PeerKey, (owner, key))
            if row is not None and row.state == "revoked":
                continue
            if row is None:
                row = PeerKey(party=owner, public_key=key, state="revoked")
                s.add(row)
            row.state, row.reason, row.recorded = "revoked", reason, time.time()
            fresh.append(key)
            if key == peer.public_key:
                peer.status, peer.reason = "revoked", f"key revoked: {reason or 'no reason'}"
    if fresh:
        write_peer_revocations(node)
        node.audit.append("peer.key_revoked", actor, {"party": owner, "keys": fresh,
                                                      "reason": reason})
    return fresh


def peer_revocations_path(node: Any) -> Path:
    """The file every job's cluster config names as ``revocation_file``: all peers' revoked
    keys, one per line. Running jobs re-read it (net/keepalive.py), so a key revoked while a
    job's links are up ends those links within seconds, not only later jobs' handshakes."""
    path = Path(node.config.key_path).parent / PEER_REVOCATIONS_FILE
    if not path.exists():
        write_peer_revocations(node)
    return path


def write_peer_revocations(node: Any) -> None:
    """Rewrite the peers' revocation file from the database (atomically: a job reading it
    sees the old list or the new one, never half)."""
    with node.db.session() as s:
        keys = sorted(r.public_key for r in s.scalars(
            select(PeerKey).where(PeerKey.state == "revoked")))
    path = Path(node.config.key_path).parent / PEER_REVOCATIONS_FILE
    partial = path.with_suffix(".partial")
    partial.write_text("# peers' revoked identity keys (written by the node)\n"
                       + "".join(f"{k}\n" for k in keys))
    partial.replace(path)


# ----- this node's own keys ---------------------------------------------------------------

def own_verify_keys(node: Any) -> list[VerifyKey]:
    """The node's current public key and every one it rotated out (``*.pub.old`` beside
    its key file): its audit checkpoints are signed by whichever it had then."""
    key_dir = Path(node.config.key_path).parent
    old = [public_key_from_b64(p.read_text().strip())
           for p in sorted(key_dir.glob(f"{node.party}.*.pub.old"))]
    return [node.identity.signing_key.verify_key, *old]


def own_revoked(node: Any) -> list[str]:
    """The node's own revoked keys, repeated to peers in every heartbeat."""
    path = Path(node.config.key_path).parent / REVOKED_FILE
    return list(json.loads(path.read_text())) if path.exists() else []


def pending_rotation(node: Any) -> dict[str, Any] | None:
    path = Path(node.config.key_path).parent / PENDING_FILE
    return json.loads(path.read_text()) if path.exists() else None


async def rotate_own_key(node: Any, orchestrator: Any, actor: str, overlap_s: float,
                         pkcs11: str | None = None) -> dict[str, Any]:
    """Make a new identity key, tell every peer (signed with the old key), then switch."""
    if not 0 < overlap_s <= MAX_OVERLAP_S:
        raise KeyringError(f"overlap must be more than 0 and at most {MAX_OVERLAP_S / 86400:.0f}"
                           " days")
    if pending_rotation(node) is not None:
        raise KeyringError("a rotation is still being announced to peers; wait until every "
                           "peer confirmed (GET /api/v1/keys)")
    old = node.identity
    label = f"{node.party}-identity-{int(time.time())}"
    new = (IdentityKey.in_new_token_key(node.party, Pkcs11Uri.parse(pkcs11, "pkcs11"))
           if pkcs11 else IdentityKey.generate(node.party))
    until = round(time.time() + overlap_s, 3)
    payload = {"new_key": new.public_b64, "until": until,
               "proof": base64.b64encode(new.sign(rotation_message(
                   node.party, new.public_b64, until))).decode()}
    key_dir = Path(node.config.key_path).parent
    stamp = time.strftime("%Y%m%dT%H%M%S")
    old_file = key_dir / f"{node.party}.{stamp}.key.old"
    Path(node.config.key_path).rename(old_file)
    (key_dir / f"{node.party}.pub").rename(key_dir / f"{node.party}.{stamp}.pub.old")
    new.save(key_dir)
    pending = {"payload": payload, "old_key_file": str(old_file), "told": [],
               "untold": _peer_parties(node), "label": label}
    _write(key_dir / PENDING_FILE, pending)
    await announce_pending(node, orchestrator)
    _switch(node, orchestrator, new)
    node.audit.append("node.key_rotated", actor, {"old_key": old.public_b64,
                                                  "new_key": new.public_b64,
                                                  "overlap_until": until,
                                                  "in_token": new.in_token})
    left = pending_rotation(node)
    return {"public_key": new.public_b64, "overlap_until": until,
            "not_yet_told": left["untold"] if left else []}


async def announce_pending(node: Any, orchestrator: Any) -> None:
    """Tell every peer not yet told about the pending rotation (signed with the old key);
    the pending file goes once all confirmed."""
    from meshmpc.platform.peering import PeerClient, PeerUnavailable

    pending = pending_rotation(node)
    if pending is None:
        return
    old = IdentityKey.load(node.party, Path(pending["old_key_file"]))
    client = PeerClient(node.party, old.signing_key, timeout_s=orchestrator.client.timeout_s)
    urls = _peer_urls(node)
    for party in list(pending["untold"]):
        try:
            await client.post(party, urls.get(party), "/api/v1/peer/key-rotation",
                              pending["payload"])
        except PeerUnavailable:
            continue
        pending["untold"].remove(party)
        pending["told"].append(party)
    path = Path(node.config.key_path).parent / PENDING_FILE
    if pending["untold"]:
        _write(path, pending)
    else:
        path.unlink(missing_ok=True)


async def revoke_own_key(node: Any, orchestrator: Any, actor: str, key: str,
                         reason: str | None) -> dict[str, Any]:
    """Revoke one of this node's old keys at every peer (now, and in every heartbeat)."""
    from meshmpc.platform.peering import PeerUnavailable

    _check_key(key, node.party)
    if key == node.identity.public_b64:
        raise KeyringError("this is the key the node signs with; rotate to a new key first")
    revoked = sorted(set(own_revoked(node)) | {key})
    _write(Path(node.config.key_path).parent / REVOKED_FILE, revoked)
    node.audit.append("node.key_revoked", actor, {"key": key, "reason": reason})
    told, untold = [], []
    urls = _peer_urls(node)
    for party in _peer_parties(node):
        try:
            await orchestrator.client.post(party, urls.get(party), "/api/v1/peer/key-revocation",
                                           {"keys": [key], "reason": reason})
            told.append(party)
        except PeerUnavailable:
            untold.append(party)
    return {"revoked": key, "told": told, "told_at_next_heartbeat": untold}


def _check_key(key: str, party: str) -> None:
    try:
        public_key_from_b64(key)
    except ValueError as exc:
        raise KeyringError(f"{party}: {key[:60]!r} is not a base64 Ed25519 key: {exc}") from exc


def _switch(node: Any, orchestrator: Any, new: IdentityKey) -> None:
    """Sign with ``new`` from now on: the node, its audit checkpoints, its peer client."""
    node.identity = new
    node.audit.signing_key = new.signing_key
    orchestrator.client.key = new.signing_key


def _peer_parties(node: Any) -> list[str]:
    with node.db.session() as s:
        return sorted(p.party for p in s.scalars(select(Peer)) if p.api_url)


def _peer_urls(node: Any) -> dict[str, str | None]:
    with node.db.session() as s:
        return {p.party: p.api_url for p in s.scalars(select(Peer))}


def _write(path: Path, value: Any) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value, indent=1))
    partial.replace(path)
