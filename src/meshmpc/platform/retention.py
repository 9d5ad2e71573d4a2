"""Retention and deletion: artefacts go when their purpose's time is up or their grant is revoked.

A finished job's artefacts (its working directory under ``node/jobs/<id>/``:
the job's output tables, models, shares, logs) expire ``purposes[purpose]``
days after it ended. :func:`purge` deletes what has expired (``dry_run`` lists
it only); :func:`purge_for_revoked_grant` deletes, at the data owner, every job
of the grantee that used the dataset, and the owner's node asks the grantee's
node to delete its side of those jobs too (:func:`purge_jobs` runs there).
Every deletion is recorded in the audit log with what was deleted.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from meshmpc.platform.jobfiles import DATASET_PREFIX, parse_spec
from meshmpc.platform.models import Grant, Job
from meshmpc.platform.node import Node


@dataclass(frozen=True)
class PurgeItem:
    job: str
    path: str
    bytes: int
    reason: str


def _size(path: Any) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _delete(node: Node, jobs: list[tuple[str, str]], dry_run: bool, actor: str
            ) -> list[PurgeItem]:
    items = []
    for job_id, reason in jobs:
        path = node.config.directory / "jobs" / job_id
        items.append(PurgeItem(job_id, str(path), _size(path), reason))
        if dry_run:
            continue
        shutil.rmtree(path, ignore_errors=True)
        with node.db.session() as s:
            job = s.get(Job, job_id)
            if job is not None:
                job.purged = time.time()
        node.audit.append("data.purge", actor, {"job": job_id, "path": str(path),
                                                "bytes": items[-1].bytes, "reason": reason})
    return items


def purge(node: Node, dry_run: bool = False, now: float | None = None) -> list[PurgeItem]:
    """Delete (or list) the artefacts of every job whose retention has expired."""
    t = time.time() if now is None else now
    with node.db.session() as s:
        due = [(j.id, f"retention for purpose {j.purpose!r} ended "
                f"{time.strftime('%Y-%m-%d', time.gmtime(j.expires or 0))}")
               for j in s.scalars(select(Job).where(Job.purged.is_(None), Job.expires.is_not(None),
                                                    Job.expires < t))]
    return _delete(node, due, dry_run, "retention")


def jobs_using(node: Node, grant: Grant) -> list[str]:
    """The jobs of ``grant``'s grantee that used its dataset on this node."""
    with node.db.session() as s:
        jobs = s.scalars(select(Job).where(Job.initiator == grant.grantee,
                                           Job.purged.is_(None))).all()
        found = []
        for job in jobs:
            mine = (parse_spec(job.spec)["parties"].get(node.party) or {}).get("data", "")
            if str(mine).removeprefix(DATASET_PREFIX) == grant.dataset:
                found.append(job.id)
        return found


def purge_jobs(node: Node, job_ids: list[str], reason: str, actor: str) -> list[PurgeItem]:
    """Delete this node's side of the named jobs (at the owner, or asked by it)."""
    with node.db.session() as s:
        known = [j for j in job_ids if (job := s.get(Job, j)) is not None and job.purged is None]
    return _delete(node, [(j, reason) for j in known], False, actor)
