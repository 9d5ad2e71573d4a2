"""Model versions from finished jobs: what the node records of each model artefact.

When a job succeeds, each model artefact this party holds (the ``models`` its run
manifest lists per step, e.g. ``card/scorecard.json``) becomes a new version of
the model ``<job name>.<step>.<artefact>``, with its lineage (job, step,
component, parameters, parties), its holder (this party: a vertical model's
other parts stay with the other parties) and ``metrics``:

- the scalar figures of the model's own step report (e.g. ``base_points``);
- ``evaluation``, when the job ran ``ml.evaluate`` and this party holds its
  report (the label holder): ``auc``, ``ks``, ``gini``, ``evaluated_on``, ``rows``,
  ``gains`` (per score decile), ``psi`` and ``roc``, the ROC points
  ``[[fpr, tpr], ...]`` at each decile cut from (0, 0) to (1, 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from meshmpc.data.vault import Vault
from meshmpc.jobs.artefacts import read_artefact
from meshmpc.platform.jobfiles import parse_spec
from meshmpc.platform.models import Job, ModelVersion
from meshmpc.platform.node import Node

EVALUATE = "ml.evaluate"
EVALUATION_KEYS = ("auc", "ks", "gini", "evaluated_on", "rows", "gains", "psi")


def roc_points(gains: list[dict[str, Any]]) -> list[list[float]]:
    """ROC points (false and true positive rates) at each decile cut of a gains table."""
    total_bad = sum(int(g["bads"]) for g in gains)
    total_good = sum(int(g["rows"]) - int(g["bads"]) for g in gains)
    points, bad, good = [[0.0, 0.0]], 0, 0
    for g in gains:
        bad, good = bad + int(g["bads"]), good + int(g["rows"]) - int(g["bads"])
        points.append([good / total_good if total_good else 0.0,
                       bad / total_bad if total_bad else 0.0])
    return points


def model_metrics(step_report: dict[str, Any], evaluation: dict[str, Any] | None
                  ) -> dict[str, Any]:
    """What a model version keeps of its step's report and of the job's evaluation."""
    metrics: dict[str, Any] = {k: v for k, v in step_report.items()
                               if isinstance(v, int | float) and not isinstance(v, bool)}
    if evaluation:
        kept = {k: evaluation[k] for k in EVALUATION_KEYS if k in evaluation}
        if isinstance(evaluation.get("gains"), list) and evaluation["gains"]:
            kept["roc"] = roc_points(evaluation["gains"])
        metrics["evaluation"] = kept
    return metrics


def _read(path: Path, vault: Vault | None = None) -> dict[str, Any]:
    """A JSON artefact (sealed at rest: opened with the node's key), {} when unreadable."""
    try:
        data = json.loads(read_artefact(path, vault))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _evaluation(root: Path, steps: list[dict[str, Any]], vault: Vault | None = None
                ) -> dict[str, Any] | None:
    """This party's report of the job's last ``ml.evaluate`` step (None when it has none)."""
    for step in reversed(steps):
        if step.get("component") == EVALUATE:
            report = _read(root / str(step["id"]) / "report.json", vault)
            if report:
                return report
    return None


def _model_files(step_dir: Path, entry: Any) -> list[Path]:
    """The step's model artefacts: those its manifest entry names, else every ``*.json``
    beside the report (a manifest written before models were listed)."""
    if isinstance(entry, dict) and isinstance(entry.get("models"), list):
        return [step_dir / f"{name}.json" for name in entry["models"]
                if (step_dir / f"{name}.json").is_file()]
    return [p for p in sorted(step_dir.glob("*.json")) if p.name != "report.json"]


def register_models(node: Node, job_id: str, root: Path) -> list[str]:
    """Record this party's model artefacts under ``root`` (its output folder of the job)
    as new model versions; returns the names recorded."""
    names = []
    with node.db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            return []
        spec = parse_spec(job.spec)
        evaluation = _evaluation(root, list(spec["steps"]), node.vault)
        manifest = _read(root / "manifest.json").get("steps") or {}
        for step in spec["steps"]:
            step_dir = root / str(step["id"])
            report = _read(step_dir / "report.json", node.vault)
            for path in _model_files(step_dir, manifest.get(str(step["id"]))):
                name = f"{job.name}.{step['id']}.{path.stem}"
                latest = s.scalar(select(ModelVersion.version).where(
                    ModelVersion.name == name).order_by(ModelVersion.version.desc()))
                s.add(ModelVersion(
                    name=name, version=(latest or 0) + 1, job_id=job_id, step=str(step["id"]),
                    lineage={"job": job.name, "job_id": job_id, "step": step["id"],
                             "component": step.get("component"),
                             "params": step.get("params", {}), "initiator": job.initiator,
                             "parties": list(spec["parties"])},
                    holders=[node.party], metrics=model_metrics(report, evaluation),
                    path=str(path)))
                names.append(name)
    return names
