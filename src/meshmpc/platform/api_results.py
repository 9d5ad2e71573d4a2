"""A job's results at this node: its own party's artefacts and reports, step by step.

``GET /api/v1/jobs/{id}/results`` ->
``{"id", "party", "steps": {step: {"status", "artefacts": {name: sha256}, "report": {...}}}}``
from this party's run manifest (only what this party holds; the other parties'
results stay on their nodes). ``GET /api/v1/jobs/{id}/results/{step}/{name}``
downloads one artefact the manifest lists (``report.html``, ``scorecard.csv``...);
any other name is refused, so no path outside the job's folder can be read.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from meshmpc.jobs.artefacts import read_artefact
from meshmpc.platform.api import ApiError, node_of, requires
from meshmpc.platform.auth import Principal
from meshmpc.platform.jobfiles import parse_spec
from meshmpc.platform.models import Job
from meshmpc.platform.node import Node


def party_root(node: Node, job_id: str) -> Path:
    """This party's output folder of a job (404 when the job is unknown here)."""
    with node.db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}")
        name = str(parse_spec(job.spec).get("name", "job"))
    return node.config.directory / "jobs" / job_id / "out" / name / node.party


def _manifest(root: Path, job_id: str) -> dict[str, Any]:
    try:
        data = json.loads((root / "manifest.json").read_text())
    except FileNotFoundError:
        raise ApiError(404, "no_results", f"job {job_id} has no results here yet (not run, "
                       "still starting, or purged)") from None
    except (OSError, ValueError) as exc:
        raise ApiError(500, "bad_manifest", f"job {job_id}: unreadable manifest: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _listed(entry: Any) -> dict[str, Any]:
    """A step's artefact names (hash or None): the manifest's hashes plus its files."""
    if not isinstance(entry, dict):
        return {}
    listed: dict[str, Any] = dict(entry.get("artefacts") or {})
    for name in entry.get("files") or []:
        listed.setdefault(str(name), None)
    return listed


def results(node: Node, job_id: str) -> dict[str, Any]:
    root = party_root(node, job_id)
    steps = {}
    for step, entry in (_manifest(root, job_id).get("steps") or {}).items():
        report_path = root / str(step) / "report.json"
        try:
            report = json.loads(read_artefact(report_path, node.vault))
        except (OSError, ValueError):
            report = None
        steps[step] = {"status": entry.get("status") if isinstance(entry, dict) else None,
                       "artefacts": _listed(entry), "report": report}
    return {"id": job_id, "party": node.party, "steps": steps}


def result_routes(router: APIRouter) -> None:
    @router.get("/jobs/{job_id}/results")
    def job_results(job_id: str, request: Request,
                    who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                    ) -> dict[str, Any]:
        return results(node_of(request), job_id)

    @router.get("/jobs/{job_id}/results/{step}/{name}")
    def job_artefact(job_id: str, step: str, name: str, request: Request,
                     who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                     ) -> Response:
        node = node_of(request)
        root = party_root(node, job_id)
        entry = (_manifest(root, job_id).get("steps") or {}).get(step)
        if name not in _listed(entry):
            raise ApiError(404, "not_found", f"step {step!r} of job {job_id} has no artefact "
                           f"{name!r} at {node.party}; GET /api/v1/jobs/{job_id}/results "
                           "lists them")
        path = root / step / name
        if not path.is_file():
            raise ApiError(404, "not_found", f"artefact {step}/{name} of job {job_id} is gone "
                           "(purged?)")
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(read_artefact(path, node.vault), media_type=media,  # opened if sealed
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
