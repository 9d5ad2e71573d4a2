"""``POST /api/v1/lookups/admit``: a PIR server or score service asks before answering a batch.

Body ``{"requester": "bank", "dataset": "risklist", "count": 1000, "purpose":
"credit_approval", "component": "pir.query", "consent": {"count": 1000, "root": HEX}}``;
``200 {"admitted": 1000}`` or ``403 {"error": {"code": "GrantError" | "ConsentError",
"message": ...}}`` naming the grant, its caps and what is used, or the missing
purpose or consent (see
:mod:`meshmpc.platform.lookups`). Needs an analyst's API token (the operator who
runs the data's PIR server); every answer is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from meshmpc.platform.api import node_of, requires
from meshmpc.platform.auth import Principal
from meshmpc.platform.lookups import LookupRequest, admit

MAX_BATCH = 1_000_000


class ConsentBody(BaseModel):
    """The batch's consent: how many references and their Merkle root (checked by admit)."""

    count: int | None = Field(None, ge=1)
    root: str | None = Field(None, max_length=64)


class AdmitBody(BaseModel):
    """A batch to admit; a missing purpose or consent is refused by :func:`admit` (403,
    audited as ``lookup.refused``), not by the schema, so the owner keeps a trace."""

    requester: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    dataset: str = Field(min_length=1, max_length=128)
    count: int = Field(ge=1, le=MAX_BATCH)
    purpose: str | None = Field(None, max_length=64)
    component: str = "pir.query"
    consent: ConsentBody | None = None


def lookup_routes(router: APIRouter) -> None:
    @router.post("/lookups/admit")
    def admit_lookups(body: AdmitBody, request: Request,
                      who: Principal = Depends(requires("lookups.admit"))  # noqa: B008
                      ) -> dict[str, Any]:
        """Admit a whole batch of a partner's lookups under its grant, or refuse it (403)."""
        consent = body.consent
        admitted = admit(node_of(request), LookupRequest(
            body.requester, body.dataset, body.count, body.purpose,
            consent.count if consent else None, consent.root if consent else None,
            body.component))
        return {"admitted": admitted}
