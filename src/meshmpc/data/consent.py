"""Purpose and consent references of a request: the configured purposes, Merkle root and proofs.

Engine level (the PIR client, the online scorer and the platform node all use
it): the requester keeps its consent references; the data owner receives only
their count and a Merkle root (SHA-256, RFC 6962 style with domain-separated
leaves and nodes) and can later be shown that a reference was part of a batch
with a short proof (:func:`merkle_proof`, :func:`verify_proof`), without
learning whom the others concern. :func:`check_request` validates a request
before anything is sent. The node's policy around it (grants, retention by
purpose) is :mod:`meshmpc.platform.consent`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from meshmpc.errors import MeshMPCError

DEFAULT_PURPOSES: dict[str, int] = {
    "credit_approval": 180,        # 贷前审批
    "loan_monitoring": 730,        # 贷中监测
    "post_loan_management": 1825,  # 贷后管理 / 逾期管理
    "model_development": 180,      # 模型开发与验证
    "regulatory_reporting": 1825,  # 监管报送
}
"""Purpose -> retention of its artefacts in days."""

MAX_REFS = 10_000_000


class ConsentError(MeshMPCError, PermissionError):
    """A request without a valid purpose or consent, refused before any protocol runs."""


def _leaf(ref: str) -> bytes:
    return hashlib.sha256(b"\x00" + ref.encode()).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(refs: Sequence[str]) -> list[list[bytes]]:
    level = [_leaf(r) for r in refs]
    levels = [level]
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
               for i in range(0, len(level), 2)]
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(refs: Sequence[str]) -> str:
    """Hex Merkle root of the references, in the order given (an odd node is carried up)."""
    if not refs:
        raise ConsentError("no consent references given")
    return _levels(refs)[-1][0].hex()


def merkle_proof(refs: Sequence[str], index: int) -> list[tuple[str, str]]:
    """Sibling hashes from leaf ``index`` to the root, each tagged 'L' or 'R'."""
    proof: list[tuple[str, str]] = []
    for level in _levels(refs)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(("L" if sibling < index else "R", level[sibling].hex()))
        index //= 2
    return proof


def verify_proof(ref: str, proof: Sequence[tuple[str, str]], root: str) -> bool:
    """True when ``ref`` with ``proof`` hashes up to ``root``."""
    node = _leaf(ref)
    for side, sibling in proof:
        other = bytes.fromhex(sibling)
        node = _node(other, node) if side == "L" else _node(node, other)
    return node.hex() == root


def check_request(purpose: str | None, refs: Sequence[str] | None,
                  purposes: dict[str, int]) -> tuple[int, str]:
    """Validate a request's purpose and consent; returns (count, root) to send the owner."""
    if not purpose:
        raise ConsentError("a purpose is required (one of: " + ", ".join(sorted(purposes)) + ")")
    if purpose not in purposes:
        raise ConsentError(f"purpose {purpose!r} is not configured on this node; use one of: "
                           + ", ".join(sorted(purposes)))
    if not refs:
        raise ConsentError(f"purpose {purpose!r} needs the consent references of the people "
                           "concerned (consent_refs)")
    if len(refs) > MAX_REFS:
        raise ConsentError(f"{len(refs)} consent references; at most {MAX_REFS} per request")
    if any(not r or len(r) > 256 for r in refs):
        raise ConsentError("every consent reference is a non-empty string of at most 256 "
                           "characters")
    return len(refs), merkle_root(refs)


def consent_fields(purpose: str | None, refs: Sequence[str] | None,
                   purposes: dict[str, int] | None = None) -> dict[str, Any]:
    """The ``purpose`` and ``consent: {"count", "root"}`` fields a lookup batch carries
    (validated first: :func:`check_request` against ``purposes``, the defaults when None)."""
    count, root = check_request(purpose, refs, DEFAULT_PURPOSES if purposes is None
                                else purposes)
    return {"purpose": purpose, "consent": {"count": count, "root": root}}
