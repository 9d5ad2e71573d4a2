"""Lookups (PIR queries, online scores) admitted under the data owner's grants.

Without caps a partner could enumerate a risk list with public credit codes,
so every batch of lookups a partner makes against one of this node's
datasets passes :func:`admit` first: a live grant for the dataset, the
partner, the component (``pir.query`` or ``online.score``) and the purpose;
a consent batch covering at least as many people as keys (its count and
Merkle root, as for jobs: :mod:`meshmpc.platform.consent`); and room under the
grant's per-day and total caps (:meth:`GrantBook.consume_lookups`, whole
batches only). Each admitted batch is kept as a ``ConsentBatch`` and audited;
a refusal is audited too, and names the grant, the caps and what is left.

Two ways for a PIR server to ask (``PirServer(db, admit=gate)``, the hook in
:mod:`meshmpc.pir.server`, asked before each OPRF batch):

- :class:`NodeLookupGate` when the server runs inside the node's process;
- :class:`RemoteLookupGate` when ``pir serve --node URL`` runs on its own: it
  calls the node's ``POST /api/v1/lookups/admit``
  (:mod:`meshmpc.platform.api_lookups`) with an API token of an analyst
  account. It is :class:`meshmpc.pir.admit_http.HttpLookupGate`, engine level
  (pir imports no platform code), re-exported here.

The requester puts ``purpose`` and ``consent: {"count", "root"}`` in the batch
(``PirClient.request_fields``; :func:`consent_fields` builds them from its
consent references, which it records itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from meshmpc.data.consent import ConsentError, consent_fields
from meshmpc.pir.admit_http import HttpLookupGate as RemoteLookupGate
from meshmpc.platform.grants import GrantError
from meshmpc.platform.models import ConsentBatch
from meshmpc.platform.node import Node

COMPONENTS = ("pir.query", "online.score")

__all__ = ["COMPONENTS", "LookupRequest", "NodeLookupGate", "RemoteLookupGate", "admit",
           "consent_fields", "request_of"]


@dataclass(frozen=True)
class LookupRequest:
    """One batch of lookups a partner asks to make against one of this node's datasets."""

    requester: str
    dataset: str
    count: int
    purpose: str | None
    consent_count: int | None
    consent_root: str | None
    component: str = "pir.query"


def request_of(requester: str, dataset: str, count: int, fields: dict[str, Any],
               component: str = "pir.query") -> LookupRequest:
    """A :class:`LookupRequest` from the fields a batch carried (absent ones are None)."""
    raw = fields.get("consent")
    consent: dict[str, Any] = raw if isinstance(raw, dict) else {}
    consent_count, root = consent.get("count"), consent.get("root")
    purpose = fields.get("purpose")
    return LookupRequest(requester, dataset, count,
                         purpose if isinstance(purpose, str) else None,
                         consent_count if isinstance(consent_count, int) else None,
                         root if isinstance(root, str) else None, component)


def _check_consent(node: Node, request: LookupRequest) -> None:
    who = f"{node.party}: {request.requester}'s {request.count} lookups on {request.dataset!r}"
    if request.component not in COMPONENTS:
        raise ConsentError(f"{who}: unknown component {request.component!r}; use one of "
                           f"{list(COMPONENTS)}")
    if request.purpose is None:
        raise ConsentError(f"{who} carry no purpose; give one of: "
                           f"{', '.join(sorted(node.config.purposes))}")
    if request.purpose not in node.config.purposes:
        raise ConsentError(f"{who}: purpose {request.purpose!r} is not configured here; use "
                           f"one of: {', '.join(sorted(node.config.purposes))}")
    root = request.consent_root or ""
    if request.consent_count is None or len(root) != 64 \
            or any(c not in "0123456789abcdef" for c in root):
        raise ConsentError(f"{who} carry no consent (count and 64-hex Merkle root of the "
                           "consent references)")
    if request.consent_count < request.count:
        raise ConsentError(f"{who}: consent covers {request.consent_count} people; one "
                           "reference per key looked up is needed")


def admit(node: Node, request: LookupRequest) -> int:
    """Admit a whole batch or raise (ConsentError, GrantError); records and audits it."""
    detail = {"requester": request.requester, "dataset": request.dataset,
              "count": request.count, "component": request.component,
              "purpose": request.purpose}
    try:
        _check_consent(node, request)
        admitted = node.grants.consume_lookups(request.requester, request.dataset,
                                               request.count, request.purpose,
                                               request.component, whole=True)
    except (ConsentError, GrantError) as exc:
        node.audit.append("lookup.refused", request.requester, {**detail, "reason": str(exc)})
        raise
    assert request.consent_count is not None and request.consent_root is not None
    with node.db.session() as s:
        s.add(ConsentBatch(requester=request.requester, purpose=str(request.purpose),
                           kind="lookup" if request.component == "pir.query" else "score",
                           reference=request.dataset, count=request.consent_count,
                           merkle_root=request.consent_root))
    node.audit.append("lookup.admit", request.requester,
                      {**detail, "consent_root": request.consent_root})
    return admitted


class NodeLookupGate:
    """The PIR server hook when the server runs inside the node: admits in a worker thread."""

    def __init__(self, node: Node, dataset: str, component: str = "pir.query") -> None:
        self.node, self.dataset, self.component = node, dataset, component

    async def __call__(self, client: str, count: int, header: dict[str, Any]) -> None:
        from meshmpc.pir.errors import LookupRefused

        request = request_of(client, self.dataset, count, header, self.component)
        try:
            await asyncio.to_thread(admit, self.node, request)
        except (ConsentError, GrantError) as exc:
            raise LookupRefused(str(exc)) from None
