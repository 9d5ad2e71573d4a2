"""The node's strategy endpoints (``/api/v1/strategies``), registered through the
``meshmpc.node_routers`` entry point so the platform never imports this app.

List versions and what is in service, read a version's JDM document, validate a draft,
simulate it on an example applicant (which rules fired), backtest it against the version in
service on a history file of the node, propose it (``strategy_editor``), publish or roll back
(``approver``, never the version's author: maker-checker, enforced by the store). Errors are
the platform's error body; a validation error keeps its rule and field for the editor.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from meshmpc.platform.api import ApiError, current_user, node_of, page, requires
from meshmpc.platform.auth import Principal
from meshmpc_credit.strategy.backtest import backtest, read_cases
from meshmpc_credit.strategy.document import CompiledStrategy, StrategyError, parse_document
from meshmpc_credit.strategy.store import Actor, StrategyStore, versions_table
from meshmpc_credit.strategy.validate import validate

NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class DraftBody(BaseModel):
    document: dict[str, Any] | str
    note: str = ""


class SimulateBody(BaseModel):
    document: dict[str, Any] | str | None = None
    context: dict[str, Any]


class BacktestBody(BaseModel):
    history: str = Field(description="JSON-lines file of cases on this node")
    document: dict[str, Any] | str | None = None


def _text(document: dict[str, Any] | str) -> str:
    import json

    return document if isinstance(document, str) else json.dumps(document)


def store_of(request: Request) -> StrategyStore:
    """One store per app, on the node's own database and audit log."""
    store: StrategyStore | None = getattr(request.app.state, "strategy_store", None)
    if store is None:
        node = node_of(request)
        store = StrategyStore(node.db.engine, audit=node.audit)
        request.app.state.strategy_store = store
    return store


def actor(who: Principal) -> Actor:
    return Actor(who.name, frozenset(who.roles))


def _document(store: StrategyStore, name: str, version: int) -> str:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        text = conn.execute(sa.select(versions_table.c.document).where(
            versions_table.c.strategy == name, versions_table.c.version == version)).scalar()
    if text is None:
        raise ApiError(404, "not_found", f"strategy {name} has no version {version}")
    return str(text)


def _draft_or_version(store: StrategyStore, name: str, version: int,
                      document: dict[str, Any] | str | None) -> CompiledStrategy:
    if document is None:
        return store.compiled(name, version)
    return CompiledStrategy(name, version, parse_document(name, _text(document)))


def read_routes(router: APIRouter) -> None:
    @router.get("")
    def strategies(request: Request,
                   who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                   ) -> dict[str, Any]:
        store = store_of(request)
        items = store.versions()
        for item in items:
            state = store.service_state(item["strategy"])
            item["in_service"] = bool(state and state.champion == item["version"])
        return page(items, len(items), len(items), 0)

    @router.get("/example-context")
    def example_context(who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                        ) -> dict[str, Any]:
        """A decision context of one unlisted applicant, for simulating a draft."""
        from meshmpc_credit.strategy.context import build_context

        return build_context({"loan_amount": 800_000.0, "avg_deposit_balance_6m": 200_000.0},
                             {}, 690.0, [])

    @router.get("/{name}/versions/{version}")
    def version_document(name: str, version: int, request: Request,
                         who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                         ) -> dict[str, Any]:
        import json

        store = store_of(request)
        state = store.service_state(name)
        return {"strategy": name, "version": version,
                "document": json.loads(_document(store, name, version)),
                "champion": state.champion if state else None}


def check_routes(router: APIRouter) -> None:
    @router.post("/{name}/validate")
    def check(name: str, body: DraftBody,
              who: Principal = Depends(current_user)  # noqa: B008
              ) -> dict[str, Any]:
        try:
            validate(name, _text(body.document))
        except StrategyError as exc:
            return {"ok": False, "message": str(exc), "rule": exc.rule, "field": exc.field}
        return {"ok": True, "message": None, "rule": None, "field": None}

    @router.post("/{name}/versions/{version}/simulate")
    def simulate(name: str, version: int, body: SimulateBody, request: Request,
                 who: Principal = Depends(current_user)  # noqa: B008
                 ) -> dict[str, Any]:
        compiled = _draft_or_version(store_of(request), name, version, body.document)
        return compiled.evaluate(body.context).to_json()

    @router.post("/{name}/versions/{version}/backtest")
    def run_backtest(name: str, version: int, body: BacktestBody, request: Request,
                     who: Principal = Depends(current_user)  # noqa: B008
                     ) -> dict[str, Any]:
        store = store_of(request)
        path = Path(body.history)
        if not path.is_file():
            raise ApiError(400, "bad_history", f"no history file {path} on this node")
        state = store.service_state(name)
        champion = store.compiled(name, state.champion) if state else None
        candidate = _draft_or_version(store, name, version, body.document)
        return backtest(candidate, read_cases(path), champion)


def write_routes(router: APIRouter) -> None:
    @router.post("/{name}/versions", status_code=201)
    def propose(name: str, body: DraftBody, request: Request,
                who: Principal = Depends(current_user)  # noqa: B008
                ) -> dict[str, Any]:
        if not re.match(NAME, name):
            raise ApiError(400, "bad_name", f"strategy name {name!r} must match {NAME}")
        version = store_of(request).propose(name, _text(body.document), actor(who), body.note)
        node_of(request).audit.append("strategy.propose", who.name,
                                      {"strategy": name, "version": version})
        return {"strategy": name, "version": version}

    @router.post("/{name}/versions/{version}/publish")
    def publish(name: str, version: int, request: Request,
                who: Principal = Depends(current_user)  # noqa: B008
                ) -> dict[str, Any]:
        state = store_of(request).publish(name, version, actor(who))
        return {"strategy": name, "champion": state.champion, "generation": state.generation}

    @router.post("/{name}/versions/{version}/rollback")
    def rollback(name: str, version: int, request: Request,
                 who: Principal = Depends(current_user)  # noqa: B008
                 ) -> dict[str, Any]:
        state = store_of(request).rollback(name, version, actor(who))
        return {"strategy": name, "champion": state.champion, "generation": state.generation}


def monitoring_routes(router: APIRouter) -> None:
    """Read-only in-loan and post-loan results (:mod:`meshmpc_credit.monitoring_reads`)."""
    from meshmpc_credit import monitoring_reads as reads

    @router.get("")
    def runs(request: Request,
             who: Principal = Depends(requires("datasets.read"))  # noqa: B008
             ) -> dict[str, Any]:
        items = [reads.summary(run) for run in reads.monitoring_runs(node_of(request))]
        return page(items, len(items), len(items), 0)

    @router.get("/{job_id}/{step}")
    def run_detail(job_id: str, step: str, request: Request,
                   who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                   ) -> dict[str, Any]:
        return reads.detail(reads.find_run(node_of(request), job_id, step))

    @router.get("/{job_id}/{step}/report.html", response_class=FileResponse)
    def run_html(job_id: str, step: str, request: Request,
                 who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                 ) -> FileResponse:
        node = node_of(request)
        path = reads.report_html(node, reads.find_run(node, job_id, step))
        return FileResponse(path, media_type="text/html; charset=utf-8")


def router() -> APIRouter:
    """The ``meshmpc.node_routers`` entry point: strategy endpoints under /api/v1/strategies,
    in-loan and post-loan results under /api/v1/monitoring."""
    strategy_router = APIRouter(prefix="/api/v1/strategies", tags=["strategies"])
    read_routes(strategy_router)
    check_routes(strategy_router)
    write_routes(strategy_router)
    monitoring_router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])
    monitoring_routes(monitoring_router)
    both = APIRouter()
    both.include_router(strategy_router)
    both.include_router(monitoring_router)
    return both
