"""The in-loan and post-loan results a node holds, read for the console (read-only).

A ``credit.inloan`` or ``credit.postloan`` step of a finished job leaves, at the bank,
``jobs/<id>/out/<job name>/<party>/<step>/`` with ``report.json`` and the tables ``alerts``
(in-loan) or ``watch_list`` and ``collection_list`` (post-loan). This module finds those
steps among the node's jobs, summarises them, returns the first rows of their alert tables
and renders the bilingual HTML report (:mod:`meshmpc_credit.reports.lifecycle`) on first
request into ``jobs/<id>/reports/<step>.html`` (never into the step folder, whose files
the run's manifest hashes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from meshmpc.data.vault import Vault
from meshmpc.jobs.artefacts import read_artefact, table_from_parquet
from meshmpc.platform.api import ApiError
from meshmpc.platform.jobfiles import parse_spec
from meshmpc.platform.models import Job
from meshmpc.platform.node import Node

KINDS = {"credit.inloan": "inloan", "credit.postloan": "postloan"}
TABLES = {"inloan": ("alerts",), "postloan": ("watch_list", "collection_list")}
ROWS = 50


@dataclass(frozen=True)
class MonitoringRun:
    """One monitoring step of one job, where this party keeps its results."""

    job_id: str
    job_name: str
    step: str
    kind: str
    finished: float | None
    folder: Path
    vault: Vault | None = None

    @property
    def report(self) -> dict[str, Any]:
        return dict(json.loads(read_artefact(self.folder / "report.json", self.vault)))

    def table(self, name: str) -> pa.Table | None:
        """An artefact table of the step (sealed at rest: opened with the node's key)."""
        path = self.folder / f"{name}.parquet"
        if not path.is_file():
            return None
        return table_from_parquet(read_artefact(path, self.vault), compact=False)

    def rows(self, table: str) -> int:
        found = self.table(table)
        return 0 if found is None else found.num_rows


def _runs_of(node: Node, job_id: str, spec_text: str, finished: float | None
             ) -> list[MonitoringRun]:
    spec = parse_spec(spec_text)
    root = node.config.directory / "jobs" / job_id / "out" / str(spec.get("name", "job")) / \
        node.party
    out = []
    for step in spec["steps"]:
        kind = KINDS.get(str(step.get("component")))
        folder = root / str(step.get("id"))
        if kind and (folder / "report.json").is_file():
            out.append(MonitoringRun(job_id, str(spec.get("name", job_id)), str(step["id"]),
                                     kind, finished, folder, node.vault))
    return out


def monitoring_runs(node: Node) -> list[MonitoringRun]:
    """Every monitoring step with results here, newest job first."""
    jobs = Job.__table__
    query = sa.select(jobs.c.id, jobs.c.spec, jobs.c.finished).where(
        jobs.c.state == "Succeeded", jobs.c.spec.like("%credit.%")).order_by(
        jobs.c.created.desc())
    with node.db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [run for job_id, spec, finished in rows
            for run in _runs_of(node, job_id, spec, finished)]


def find_run(node: Node, job_id: str, step: str) -> MonitoringRun:
    """The run of ``step`` in ``job_id``, or a 404 naming what is missing."""
    with node.db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r} on {node.party}")
        spec, finished, state = job.spec, job.finished, job.state
    if state != "Succeeded":
        raise ApiError(404, "not_found", f"job {job_id} is {state}, not Succeeded: its "
                       "monitoring results are incomplete; retry it on the Jobs page")
    for run in _runs_of(node, job_id, spec, finished):
        if run.step == step:
            return run
    raise ApiError(404, "not_found", f"job {job_id} has no in-loan or post-loan step {step!r} "
                   f"with results on {node.party}")


def summary(run: MonitoringRun) -> dict[str, Any]:
    """What the list shows: headline figures and alert counts."""
    report = run.report
    if run.kind == "inloan":
        figures = {k: report.get(k) for k in ("loans", "months", "unscored")}
    else:
        figures = {"as_of": report.get("as_of"), "watch": report.get("watch"),
                   "collection": report.get("collection")}
    return {"job_id": run.job_id, "job_name": run.job_name, "step": run.step,
            "kind": run.kind, "finished": run.finished, "figures": figures,
            "tables": {t: run.rows(t) for t in TABLES[run.kind]},
            "html": f"/api/v1/monitoring/{run.job_id}/{run.step}/report.html"}


def _head(run: MonitoringRun, name: str, limit: int = ROWS) -> list[dict[str, Any]]:
    table = run.table(name)
    return [] if table is None else table.slice(0, limit).to_pylist()


def detail(run: MonitoringRun) -> dict[str, Any]:
    """The full report and the first rows of each alert table."""
    return {**summary(run), "report": run.report,
            "rows": {t: _head(run, t) for t in TABLES[run.kind]}}


def report_html(node: Node, run: MonitoringRun) -> Path:
    """The bilingual HTML report of a run, rendered once and kept beside the job."""
    path = node.config.directory / "jobs" / run.job_id / "reports" / f"{run.step}.html"
    if path.is_file():
        return path
    import pandas as pd

    from meshmpc_credit.reports.lifecycle import monitoring_report, postloan_report

    def frame(table: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
        found = run.table(table)
        return found.to_pandas() if found is not None else pd.DataFrame(columns=list(columns))

    try:
        if run.kind == "inloan":
            return monitoring_report(path, run.report, frame("alerts", ("month", "score")))
        return postloan_report(path, run.report, frame("watch_list"), frame("collection_list"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError(422, "bad_report", f"{run.folder / 'report.json'} lacks what the "
                       f"{run.kind} report needs ({type(exc).__name__}: {exc}); re-run "
                       f"job {run.job_id}") from exc
