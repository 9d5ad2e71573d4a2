"""REST resources of a node: datasets, grants, jobs and approvals, audit (models: api_models).

See :mod:`meshmpc.platform.api` for the conventions (auth, CSRF, errors, paging).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from meshmpc.errors import MeshMPCError
from meshmpc.platform.api import (
    ApiError,
    cached_page,
    node_of,
    page,
    paging,
    requires,
    rows_page,
)
from meshmpc.platform.api_lookups import lookup_routes
from meshmpc.platform.api_models import model_routes
from meshmpc.platform.api_results import result_routes
from meshmpc.platform.audit import verify
from meshmpc.platform.auth import Principal
from meshmpc.platform.keyring import own_verify_keys
from meshmpc.platform.models import Dataset, Grant, Job, JobParty, JobStep
from meshmpc.platform.node import Node


class DatasetBody(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    uri: str
    schema_path: str | None = None
    key: str | None = None
    description: str | None = None


class GrantBody(BaseModel):
    dataset: str
    grantee: str
    components: list[str] = []
    initiators: list[str] = []
    purposes: list[str] = []
    expires: float | None = None
    max_uses: int | None = Field(None, ge=1)
    max_lookups_per_day: int | None = Field(None, ge=0)
    max_lookups_total: int | None = Field(None, ge=0)
    auto_approve: bool = False


class JobBody(BaseModel):
    spec: str
    purpose: str | None = None
    consent_refs: list[str] = []


class DecisionBody(BaseModel):
    reason: str | None = None


def _dataset_json(d: Dataset, full: bool) -> dict[str, Any]:
    public: dict[str, Any] = {"name": d.name, "columns": d.columns, "row_count": d.row_count,
              "published": d.published, "description": d.description}
    if full:
        public |= {"uri": d.uri, "schema_path": d.schema_path, "key": d.key, "quality": d.quality,
                   "created": d.created}
    return public


def _describe_source(body: DatasetBody, node_dir: Path) -> tuple[list[Any], int | None, dict]:
    """Columns, row count and a quality summary of a dataset being registered."""
    quality: dict[str, Any] = {}
    if body.schema_path:
        from meshmpc.data.validate import check

        report = check(body.schema_path, body.uri)
        html_dir = node_dir / "datasets" / body.name
        report.write(html_dir, "quality")
        quality = {"ok": report.ok, "rows": report.rows, "errors": len(report.errors),
                   "warnings": len(report.warnings), "problems": report.problems()[:50],
                   "html": str(html_dir / "quality.html")}
        columns = [{"name": c.name, "type": getattr(c, "dtype", "")} for c in report.columns]
        return columns, report.rows, quality
    if body.uri.endswith(".parquet") and Path(body.uri).exists():
        meta = pq.read_metadata(body.uri)
        columns = [{"name": f.name, "type": str(f.type)} for f in meta.schema.to_arrow_schema()]
        return columns, meta.num_rows, quality
    from meshmpc.data.loaders import load_table

    table = load_table(body.uri)
    return ([{"name": f.name, "type": str(f.type)} for f in table.schema], table.num_rows,
            quality)


def _job_json(job: Job) -> dict[str, Any]:
    return {"id": job.id, "name": job.name, "initiator": job.initiator, "state": job.state,
            "error": job.error, "purpose": job.purpose, "submitted_by": job.submitted_by,
            "created": job.created, "started": job.started, "finished": job.finished,
            "parties": [{"party": p.party, "approval": p.approval, "approver": p.approver,
                         "reason": p.reason} for p in job.parties],
            "steps": [{"party": s.party, "step": s.step, "state": s.state, "error": s.error,
                       "started": s.started, "finished": s.finished,
                       "bytes_sent": s.bytes_sent} for s in job.steps]}


QUALITY_SUMMARY = ("ok", "rows", "errors", "warnings", "html")


def _dataset_page(node: Node, limit: int, offset: int) -> dict[str, Any]:
    table = Dataset.__table__
    with node.db.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(table)).scalar() or 0
        rows = conn.execute(select(table).order_by(table.c.name).limit(limit)
                            .offset(offset)).mappings().all()
    items = []
    for row in rows:
        item = dict(row)
        quality = item.get("quality") or {}
        item["quality"] = {k: quality[k] for k in QUALITY_SUMMARY if k in quality}
        items.append(item)
    return page(items, total, limit, offset)


def dataset_routes(router: APIRouter) -> None:
    @router.get("/datasets")
    async def datasets(request: Request,
                       who: Principal = Depends(requires("datasets.read")),  # noqa: B008
                       limit: int = 50, offset: int = 0) -> Response:
        """Registered datasets; ``quality`` is the summary (its problems are in the report)."""
        limit, offset = paging(limit, offset)
        node = node_of(request)
        return await cached_page(request, ("datasets", limit, offset), ("datasets",),
                                 lambda: _dataset_page(node, limit, offset))

    @router.post("/datasets", status_code=201)
    def register(body: DatasetBody, request: Request,
                 who: Principal = Depends(requires("datasets.write"))  # noqa: B008
                 ) -> dict[str, Any]:
        node = node_of(request)
        try:
            columns, rows, quality = _describe_source(body, node.config.directory)
        except MeshMPCError as exc:
            raise ApiError(400, "bad_dataset", f"dataset {body.name!r}: {exc}") from exc
        with node.db.session() as s:
            if s.scalar(select(Dataset).where(Dataset.name == body.name)) is not None:
                raise ApiError(409, "exists", f"dataset {body.name!r} is registered already")
            dataset = Dataset(name=body.name, uri=body.uri, schema_path=body.schema_path,
                              key=body.key, columns=columns, row_count=rows, quality=quality,
                              description=body.description)
            s.add(dataset)
            result = _dataset_json(dataset, True)
        node.audit.append("dataset.register", who.name, {"dataset": body.name, "rows": rows})
        return result

    @router.post("/datasets/{name}/publish")
    def publish(name: str, request: Request,
                who: Principal = Depends(requires("datasets.write"))  # noqa: B008
                ) -> dict[str, Any]:
        node = node_of(request)
        with node.db.session() as s:
            dataset = s.scalar(select(Dataset).where(Dataset.name == name))
            if dataset is None:
                raise ApiError(404, "not_found", f"no dataset {name!r}")
            dataset.published = True
            result = _dataset_json(dataset, False)
        node.audit.append("dataset.publish", who.name, {"dataset": name})
        return result

    @router.get("/datasets/{name}/quality.html", response_class=HTMLResponse)
    def quality_html(name: str, request: Request,
                     who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                     ) -> HTMLResponse:
        with node_of(request).db.session() as s:
            dataset = s.scalar(select(Dataset).where(Dataset.name == name))
            html = (dataset.quality or {}).get("html") if dataset else None
        if not html or not Path(html).exists():
            raise ApiError(404, "not_found", f"no quality report for {name!r} (register it "
                           "with a schema_path to get one)")
        return HTMLResponse(Path(html).read_text())


def grant_routes(router: APIRouter) -> None:
    @router.get("/grants")
    async def grants(request: Request,
                     who: Principal = Depends(requires("datasets.read")),  # noqa: B008
                     limit: int = 50, offset: int = 0) -> Response:
        limit, offset = paging(limit, offset)
        node = node_of(request)
        return await cached_page(request, ("grants", limit, offset), ("grants",),
                                 lambda: rows_page(node, Grant.__table__, Grant.__table__.c.id,
                                                    limit, offset))

    @router.post("/grants", status_code=201)
    def create(body: GrantBody, request: Request,
               who: Principal = Depends(requires("grants.write"))  # noqa: B008
               ) -> dict[str, Any]:
        node = node_of(request)
        fields = body.model_dump(exclude={"dataset", "grantee"})
        grant_id = node.grants.create(body.dataset, body.grantee, who.name, **fields)
        node.audit.append("grant.create", who.name, {"grant": grant_id, **body.model_dump()})
        return {"id": grant_id}

    @router.post("/grants/{grant_id}/revoke")
    async def revoke(grant_id: int, request: Request,
               who: Principal = Depends(requires("grants.write"))  # noqa: B008
               ) -> dict[str, Any]:
        from meshmpc.platform.retention import jobs_using, purge_jobs

        node = node_of(request)
        node.grants.revoke(grant_id)
        node.audit.append("grant.revoke", who.name, {"grant": grant_id})
        with node.db.session() as s:
            grant = s.get(Grant, grant_id)
            assert grant is not None
            grantee, dataset = grant.grantee, grant.dataset
            jobs = jobs_using(node, grant)
        reason = f"grant {grant_id} of {dataset!r} to {grantee} revoked"
        deleted = purge_jobs(node, jobs, reason, who.name)
        failed = await request.app.state.orchestrator.tell(
            [grantee], "/api/v1/peer/purge", {"jobs": jobs, "reason": reason}) if jobs else {}
        return {"id": grant_id, "revoked": True, "purged_jobs": [d.job for d in deleted],
                "partner_purge": "failed: " + failed[grantee] if failed else "requested"}


def job_routes(router: APIRouter) -> None:
    @router.get("/jobs")
    async def jobs(request: Request,
                   who: Principal = Depends(requires("datasets.read")),  # noqa: B008
                   limit: int = 50, offset: int = 0, state: str | None = None) -> Response:
        """Job summaries (approvals per party, step counts by state); GET /jobs/{id} has the DAG."""
        limit, offset = paging(limit, offset)
        node = node_of(request)
        return await cached_page(request, ("jobs", limit, offset, state), JOB_TABLES,
                                 lambda: _job_summaries(node, limit, offset, state))

    @router.post("/jobs", status_code=201)
    async def submit(body: JobBody, request: Request,
                     who: Principal = Depends(requires("jobs.submit"))  # noqa: B008
                     ) -> dict[str, Any]:
        job_id = await request.app.state.orchestrator.submit(body.spec, body.purpose, who.name,
                                                             body.consent_refs)
        return _get_job(node_of(request), job_id)

    @router.get("/jobs/{job_id}")
    def get_job(job_id: str, request: Request,
                who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                ) -> dict[str, Any]:
        return _get_job(node_of(request), job_id)

    @router.get("/jobs/{job_id}/spec")
    def job_spec(job_id: str, request: Request,
                 who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                 ) -> dict[str, Any]:
        """The job file as submitted (the console's retry and "submit again" start from it)."""
        with node_of(request).db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise ApiError(404, "not_found", f"no job {job_id!r}")
            return {"id": job.id, "name": job.name, "initiator": job.initiator,
                    "spec": job.spec, "purpose": job.purpose}

    @router.get("/jobs/{job_id}/log")
    def job_log(job_id: str, request: Request,
                who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                ) -> dict[str, Any]:
        node = node_of(request)
        _get_job(node, job_id)
        path = node.config.directory / "jobs" / job_id / "run.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return {"id": job_id, "party": node.party, "log": text[-200_000:]}

    async def decide(job_id: str, request: Request, who: Principal, approve: bool,
                     reason: str | None) -> dict[str, Any]:
        node = node_of(request)
        with node.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise ApiError(404, "not_found", f"no job {job_id!r}")
            if job.submitted_by == who.name:
                raise ApiError(403, "maker_checker", f"{who.name} submitted job {job_id}; "
                               "another approver must decide")
            mine = next((p for p in job.parties if p.party == node.party), None)
            if mine is None or mine.approval != "pending":
                raise ApiError(409, "decided", f"job {job_id} has no pending approval here")
        await request.app.state.orchestrator.decide(job_id, who.name, approve, reason)
        return _get_job(node, job_id)

    @router.post("/jobs/{job_id}/approve")
    async def approve(job_id: str, body: DecisionBody, request: Request,
                      who: Principal = Depends(requires("jobs.approve"))  # noqa: B008
                      ) -> dict[str, Any]:
        return await decide(job_id, request, who, True, body.reason)

    @router.post("/jobs/{job_id}/reject")
    async def reject(job_id: str, body: DecisionBody, request: Request,
                     who: Principal = Depends(requires("jobs.approve"))  # noqa: B008
                     ) -> dict[str, Any]:
        return await decide(job_id, request, who, False, body.reason)

    @router.post("/jobs/{job_id}/retry")
    async def retry(job_id: str, request: Request,
                    who: Principal = Depends(requires("jobs.cancel"))  # noqa: B008
                    ) -> dict[str, Any]:
        _get_job(node_of(request), job_id)
        await request.app.state.orchestrator.retry(job_id, who.name)
        return _get_job(node_of(request), job_id)

    @router.post("/jobs/{job_id}/cancel")
    async def cancel(job_id: str, request: Request,
                     who: Principal = Depends(requires("jobs.cancel"))  # noqa: B008
                     ) -> dict[str, Any]:
        _get_job(node_of(request), job_id)
        await request.app.state.orchestrator.cancel(job_id, who.name)
        return _get_job(node_of(request), job_id)


JOB_TABLES = ("jobs", "job_parties", "job_steps")


def _job_summaries(node: Node, limit: int, offset: int, state: str | None) -> dict[str, Any]:
    """One page of jobs through three Core queries (no ORM objects: the list is hot)."""
    jobs_t, parties_t, steps_t = Job.__table__, JobParty.__table__, JobStep.__table__
    query = select(jobs_t.c.id, jobs_t.c.name, jobs_t.c.initiator, jobs_t.c.state,
                   jobs_t.c.error, jobs_t.c.purpose, jobs_t.c.created, jobs_t.c.started,
                   jobs_t.c.finished).order_by(jobs_t.c.created.desc())
    count = select(func.count()).select_from(jobs_t)
    if state:
        query, count = query.where(jobs_t.c.state == state), count.where(jobs_t.c.state == state)
    with node.db.engine.connect() as conn:
        total = conn.execute(count).scalar() or 0
        rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        ids = [r["id"] for r in rows]
        approvals: dict[str, dict[str, str]] = {i: {} for i in ids}
        for job_id, party, approval in conn.execute(
                select(parties_t.c.job_id, parties_t.c.party, parties_t.c.approval)
                .where(parties_t.c.job_id.in_(ids))):
            approvals[job_id][party] = approval
        steps: dict[str, dict[str, int]] = {i: {} for i in ids}
        for job_id, step_state, n in conn.execute(
                select(steps_t.c.job_id, steps_t.c.state, func.count())
                .where(steps_t.c.job_id.in_(ids)).group_by(steps_t.c.job_id, steps_t.c.state)):
            steps[job_id][step_state] = n
    items = [{**dict(r), "approvals": approvals[r["id"]], "step_states": steps[r["id"]]}
             for r in rows]
    return page(items, total, limit, offset)


def _get_job(node: Node, job_id: str) -> dict[str, Any]:
    with node.db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}")
        return _job_json(job)


def audit_routes(router: APIRouter) -> None:
    @router.get("/audit")
    def audit(request: Request, who: Principal = Depends(requires("audit.read")),  # noqa: B008
              kind: str | None = None, actor: str | None = None, since: float | None = None,
              limit: int = 50, offset: int = 0) -> dict[str, Any]:
        limit, offset = paging(limit, offset)
        node = node_of(request)
        items = node.audit.search(kind, actor, since, limit, offset)
        return page(items, node.audit.seq, limit, offset)

    @router.get("/audit/verify")
    def audit_verify(request: Request,
                     who: Principal = Depends(requires("audit.read"))  # noqa: B008
                     ) -> dict[str, Any]:
        node = node_of(request)
        node.audit.checkpoint()
        report = verify(node.db.engine, node.party, own_verify_keys(node))
        node.audit.append("audit.verify", who.name, {"ok": report.ok,
                                                     "entries": report.entries})
        return report.to_json()


def resource_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    dataset_routes(router)
    grant_routes(router)
    job_routes(router)
    model_routes(router)
    lookup_routes(router)
    result_routes(router)
    audit_routes(router)
    return router
