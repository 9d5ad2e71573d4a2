"""The decision service's HTTP API (FastAPI, served by uvicorn like the platform node).

* ``POST /v1/decisions`` ``{"key": "...", "fields": {bank fields}, "purpose":
  "credit_approval", "consent_ref": "..."}`` -> decision, grade, score, reasons,
  suggested limit, price band, strategy version, id (and ``model``, the
  deployed model's name and version, when the card comes from the node);
* ``GET /v1/decisions/{id}`` -> the stored decision with its inputs;
* ``POST /v1/decisions/{id}/replay`` -> the decision re-run on its stored
  inputs and version, with ``identical``;
* ``GET /v1/strategy`` -> the versions in service and the challenger comparison.

Bad input is a 422 naming the field; an unknown id a 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from meshmpc.data.consent import ConsentError
from meshmpc_credit.decision.service import DecisionService

ServiceFactory = Callable[[], AbstractAsyncContextManager[DecisionService]]


class DecisionRequest(BaseModel):
    """One applicant: the key shared with the partners and the bank's own fields."""

    key: str = Field(min_length=1, max_length=128)
    fields: dict[str, Any] = Field(default_factory=dict)
    purpose: str | None = Field(None, max_length=64)
    """Why the applicant is looked up (default: the service's, ``credit_approval``)."""
    consent_ref: str | None = Field(None, min_length=1, max_length=256)
    """The applicant's consent reference, kept by the bank; partners see count and root."""


def create_app(service: DecisionService | None = None,
               factory: ServiceFactory | None = None) -> FastAPI:
    """The app around a ready ``service``, or one that ``factory`` opens at start-up."""
    holder: dict[str, DecisionService] = {}
    if service is not None:
        holder["service"] = service

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if factory is None:
            yield
            return
        async with factory() as opened:
            holder["service"] = opened
            yield

    app = FastAPI(title="meshmpc credit decisions", lifespan=lifespan)

    def current() -> DecisionService:
        if "service" not in holder:
            raise HTTPException(503, "the decision service is starting")
        return holder["service"]

    @app.post("/v1/decisions")
    async def decide(request: DecisionRequest) -> dict[str, Any]:
        try:
            return await current().decide(request.key, request.fields, request.purpose,
                                          request.consent_ref)
        except (ValueError, ConsentError) as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/v1/decisions/{decision_id}")
    async def get_decision(decision_id: str) -> dict[str, Any]:
        row = await asyncio.to_thread(current().records.get, decision_id)
        if row is None:
            raise HTTPException(404, f"no decision {decision_id}")
        return row

    @app.post("/v1/decisions/{decision_id}/replay")
    async def replay(decision_id: str) -> dict[str, Any]:
        result = await asyncio.to_thread(current().replay, decision_id)
        if result is None:
            raise HTTPException(404, f"no decision {decision_id}")
        return result

    @app.get("/v1/strategy")
    async def strategy() -> dict[str, Any]:
        svc = current()
        active = svc.runtime.active
        comparison = await asyncio.to_thread(svc.records.challenger_comparison,
                                             svc.runtime.strategy)
        return {"strategy": svc.runtime.strategy, "champion": active.champion.version,
                "challenger": active.challenger.version if active.challenger else None,
                "challenger_share": active.share, "generation": active.generation,
                "comparison": comparison}

    return app
