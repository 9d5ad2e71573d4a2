"""Model versions on a node: the list (with metrics), deployment, and the deployed version.

The contract the decision service (apps/credit decision) reads, with any
account's API token (``datasets.read``)::

    GET /api/v1/models/deployed?name=NAME
    200 {"id", "name", "version", "job_id", "step", "path", "holders", "lineage",
         "metrics", "deployed": true}
    404 {"error": {"code": "not_deployed", "message": "... deploy one: POST
         /api/v1/models/{id}/deploy (approver)"}}

    GET /api/v1/models/deployed          every name's deployed version: {"items": [...]}

``path`` is this party's artefact of the model (its own part: a vertical
model is split among the parties in ``holders``). At most one version per
name is deployed; ``POST /api/v1/models/{id}/deploy`` (approver role, audited)
moves the mark, so a rollback is the deploy of an older version. Poll the
endpoint or re-read it on each decision: it is served from the page cache
until a model version changes.

``metrics`` is described in :mod:`meshmpc.platform.model_registry` (the step's
figures and, when the job evaluated the model here, AUC, KS, gains and ROC points).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from meshmpc.platform.api import (
    ApiError,
    cached_page,
    node_of,
    paging,
    requires,
    rows_page,
)
from meshmpc.platform.auth import Principal
from meshmpc.platform.models import ModelVersion
from meshmpc.platform.node import Node

TABLES = ("model_versions",)


def _deployed(node: Node, name: str | None) -> dict[str, Any]:
    table = ModelVersion.__table__
    query = select(table).where(table.c.deployed.is_(True)).order_by(table.c.name)
    if name is not None:
        query = query.where(table.c.name == name)
    with node.db.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    if name is None:
        return {"items": rows}
    if not rows:
        raise ApiError(404, "not_deployed", f"{node.party}: no version of model {name!r} is "
                       "deployed; deploy one: POST /api/v1/models/{id}/deploy (approver)")
    return rows[0]


def model_routes(router: APIRouter) -> None:
    @router.get("/models")
    async def models(request: Request,
                     who: Principal = Depends(requires("datasets.read")),  # noqa: B008
                     limit: int = 50, offset: int = 0) -> Response:
        """Model versions, newest first, with lineage, holders and metrics (AUC, KS, ROC)."""
        limit, offset = paging(limit, offset)
        node, table = node_of(request), ModelVersion.__table__
        return await cached_page(request, ("models", limit, offset), TABLES,
                                 lambda: rows_page(node, table, table.c.id.desc(),
                                                   limit, offset))

    @router.get("/models/deployed")
    async def deployed(request: Request,
                       who: Principal = Depends(requires("datasets.read")),  # noqa: B008
                       name: str | None = None) -> Response:
        """The deployed version of model ``name`` (404 when none), or of every model."""
        node = node_of(request)
        return await cached_page(request, ("models.deployed", name), TABLES,
                                 lambda: _deployed(node, name))

    @router.post("/models/{model_id}/deploy")
    def deploy(model_id: int, request: Request,
               who: Principal = Depends(requires("models.deploy"))  # noqa: B008
               ) -> dict[str, Any]:
        node = node_of(request)
        with node.db.session() as s:
            model = s.get(ModelVersion, model_id)
            if model is None:
                raise ApiError(404, "not_found", f"no model version {model_id}")
            for other in s.scalars(select(ModelVersion).where(ModelVersion.name == model.name)):
                other.deployed = other.id == model_id
            name, version = model.name, model.version
        node.audit.append("model.deploy", who.name, {"model": name, "version": version})
        return {"id": model_id, "name": name, "version": version, "deployed": True}
