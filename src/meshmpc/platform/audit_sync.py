"""Anchoring audit heads with peers: each node keeps the others' signed checkpoints.

A node alone could rewrite its log and sign new checkpoints with its own key;
once a peer holds a signed head, that head is fixed. Nodes call
:func:`exchange_checkpoints` periodically and at the end of every job, over the
authenticated mesh, so every participant of a job can later prove what the
others had recorded up to it (``meshmpc audit verify --anchors``).
"""

from __future__ import annotations

from collections.abc import Mapping

from nacl.signing import VerifyKey

from meshmpc.net import Context
from meshmpc.platform.audit import AuditError, AuditLog, Checkpoint

TAG = "audit/checkpoint"


async def exchange_checkpoints(ctx: Context, log: AuditLog,
                               peer_keys: Mapping[str, VerifyKey]) -> dict[str, Checkpoint]:
    """Sign this node's head, send it to every peer, anchor theirs; returns what was anchored.

    A peer's checkpoint must name that peer and carry its signature under the
    key pinned for it; anything else is refused with an AuditError naming the peer.
    """
    mine = log.checkpoint()
    await ctx.broadcast(TAG, mine.to_json())
    received = await ctx.recv_all(TAG)
    anchored: dict[str, Checkpoint] = {}
    for peer, obj in received.items():
        checkpoint = Checkpoint.from_json(obj)
        if checkpoint.party != peer:
            raise AuditError(f"{peer} sent a checkpoint naming {checkpoint.party!r}")
        if peer not in peer_keys:
            raise AuditError(f"no pinned key for {peer}; cannot anchor its audit head")
        log.store_anchor(checkpoint, peer_keys[peer])
        anchored[peer] = checkpoint
    return anchored
