"""Read-only endpoints the web console needs beyond the core API, added through the
``meshmpc.node_routers`` entry point (``console_reads``).

(``GET /api/v1/jobs/{id}/spec``, the job file as submitted for "submit again", is in the
core API: platform.api_resources.)

- ``GET /api/v1/models/{id}/evaluation``: the ``report.json`` of the ``ml.evaluate`` step of
  the job that produced a model version, at this party (the model list keeps only the scalar
  figures; the console plots ROC, KS and the score distribution from the gains table here).

It needs only ``datasets.read`` (every role), the permission ``GET /jobs/{id}`` needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request

from meshmpc.jobs.artefacts import read_artefact
from meshmpc.platform.api import ApiError, node_of, requires
from meshmpc.platform.auth import Principal
from meshmpc.platform.jobfiles import parse_spec
from meshmpc.platform.models import Job, ModelVersion
from meshmpc.platform.node import Node

EVALUATE = "ml.evaluate"


def _job(node: Node, job_id: str) -> tuple[str, str | None]:
    """The job's spec text and purpose, or 404 naming the job."""
    with node.db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r} on {node.party}")
        return job.spec, job.purpose


def evaluation_step(steps: list[dict[str, Any]], model_step: str | None) -> str | None:
    """The ``ml.evaluate`` step that judges ``model_step``: the first one listed after it,
    else the last one of the job (``None`` when the job evaluates nothing)."""
    ids = [str(s.get("id")) for s in steps]
    evaluations = [i for i, s in zip(ids, steps, strict=True) if s.get("component") == EVALUATE]
    if not evaluations:
        return None
    if model_step in ids:
        later = [i for i in evaluations if ids.index(i) > ids.index(str(model_step))]
        if later:
            return later[0]
    return evaluations[-1]


def _report_path(node: Node, job_id: str, spec: dict[str, Any], step: str) -> Path:
    name = str(spec.get("name", "job"))
    return node.config.directory / "jobs" / job_id / "out" / name / node.party / step / \
        "report.json"


def model_evaluation(node: Node, model_id: int) -> dict[str, Any]:
    """The evaluation report of a model version's job at this party, or a 404 saying why."""
    with node.db.session() as s:
        model = s.get(ModelVersion, model_id)
        if model is None:
            raise ApiError(404, "not_found", f"no model version {model_id} on {node.party}")
        job_id, model_step, label = model.job_id, model.step, f"{model.name} v{model.version}"
    if not job_id:
        raise ApiError(404, "no_evaluation", f"model {label} was not made by a job here")
    spec_text, _ = _job(node, job_id)
    spec = parse_spec(spec_text)
    step = evaluation_step(list(spec["steps"]), model_step)
    if step is None:
        raise ApiError(404, "no_evaluation", f"job {job_id} of model {label} has no "
                       f"{EVALUATE} step; add one after {model_step} to see ROC and KS")
    path = _report_path(node, job_id, spec, step)
    if not path.is_file():
        raise ApiError(404, "no_evaluation", f"{node.party} has no report of step {step} of "
                       f"job {job_id} (it ran elsewhere, did not finish, or was purged)")
    return {"model": model_id, "job_id": job_id, "step": step, "party": node.party,
            "report": json.loads(read_artefact(path, node.vault))}


def router() -> APIRouter:
    """The ``meshmpc.node_routers`` entry point ``console_reads``."""
    reads = APIRouter(prefix="/api/v1", tags=["console"])

    @reads.get("/models/{model_id}/evaluation")
    def evaluation(model_id: int, request: Request,
                   who: Principal = Depends(requires("datasets.read"))  # noqa: B008
                   ) -> dict[str, Any]:
        return model_evaluation(node_of(request), model_id)

    return reads
