"""Job files as a node sees them: parse a submitted job, find which of its own datasets it uses.

Shared by the API (submission, approval), the orchestrator (on arrival from a
peer, before running) and retention (which jobs used a revoked grant's dataset).
A party's ``data`` may name a registered dataset as ``dataset:NAME``.
"""

from __future__ import annotations

from typing import Any

from meshmpc.platform.api import ApiError
from meshmpc.platform.grants import DatasetUse
from meshmpc.platform.node import Node

DATASET_PREFIX = "dataset:"


def job_uses(node: Node, spec: dict[str, Any], initiator: str,
              purpose: str | None) -> list[DatasetUse]:
    """The datasets of this node a job would use, with the components it runs on them."""
    mine = (spec.get("parties") or {}).get(node.party)
    if not mine or initiator == node.party:  # a node's own jobs need no grant of its own data
        return []
    data = str(mine.get("data", ""))
    if not data:
        return []
    name = data[len(DATASET_PREFIX):] if data.startswith(DATASET_PREFIX) else data
    components = tuple(sorted({str(step.get("component")) for step in spec.get("steps", [])
                               if node.party in step.get("parties", spec["parties"])}))
    return [DatasetUse(name, initiator, components, purpose)]


def parse_spec(text: str) -> dict[str, Any]:
    """The job file's YAML as a dict, refused (400 bad_job) without parties or steps."""
    import yaml

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ApiError(400, "bad_job", f"job file is not YAML: {exc}") from exc
    if not isinstance(spec, dict) or not spec.get("parties") or not spec.get("steps"):
        raise ApiError(400, "bad_job", "a job needs `name`, `parties` and `steps` "
                       "(see docs: JOBS.md)")
    return spec
