"""What a run leaves on disk: per-step artefact folders and the party's manifest.

``out/<job>/<party>/<step>/`` holds a step's tables (``<name>.parquet``),
models (``<name>.json``), files the component wrote itself and ``report.json``.
A step is written into a hidden temporary folder (``.tmp-<step>-<random>``)
and renamed into place only once every party has finished the step, so a
reader never sees a half-written step. ``manifest.json`` (rewritten atomically
after every step) records each step's component and version, timings, bytes
sent and received, the SHA-256 of every artefact and the digest of the step's
inputs, which ``--resume`` compares before skipping a step.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from meshmpc.jobs.api import StepOutput

MANIFEST = "manifest.json"
REPORT = "report.json"
MANIFEST_VERSION = 1


def party_dir(out_dir: str | Path, job: str, party: str) -> Path:
    return Path(out_dir) / job / party


def new_workdir(root: Path, step_id: str) -> Path:
    """A fresh hidden temporary folder for one step's artefacts."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".tmp-{step_id}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def remove_stale_workdirs(root: Path) -> None:
    """Drop temporary folders a killed run left behind (never a completed step)."""
    if root.is_dir():
        for child in root.glob(".tmp-*"):
            shutil.rmtree(child, ignore_errors=True)


def write_output(workdir: Path, output: StepOutput) -> dict[str, Any]:
    """Write ``output`` into ``workdir``; return its manifest entry (names and hashes)."""
    if not isinstance(output, StepOutput):
        raise TypeError(f"a component must return StepOutput, not {type(output).__name__}")
    for name, table in output.tables.items():
        _check_name(name, "table")
        pq.write_table(table, workdir / f"{name}.parquet")
    for name, model in output.models.items():
        _check_name(name, "model")
        (workdir / f"{name}.json").write_text(json.dumps(model, indent=1, sort_keys=True))
    for name in output.files:
        if not (workdir / name).is_file():
            raise FileNotFoundError(f"the component listed file {name!r} but did not write "
                                    f"it under its workdir")
    (workdir / REPORT).write_text(json.dumps(output.report, indent=1, sort_keys=True,
                                             default=str))
    return {"tables": sorted(output.tables), "models": sorted(output.models),
            "files": list(output.files), "artefacts": hash_tree(workdir)}


def _check_name(name: str, kind: str) -> None:
    if not name or "/" in name or name.startswith(".") or name == "report":
        raise ValueError(f"invalid {kind} name {name!r}")


def hash_tree(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, keyed by relative path."""
    return {str(p.relative_to(folder)): file_sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def commit(workdir: Path, final: Path) -> None:
    """Move a finished step's folder into place (replacing an older run of the step)."""
    old = None
    if final.exists():
        old = final.with_name(f".tmp-old-{final.name}-{secrets.token_hex(4)}")
        final.rename(old)
    workdir.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def is_intact(final: Path, entry: dict[str, Any]) -> bool:
    """True when the step folder holds exactly the artefacts the manifest recorded."""
    recorded = entry.get("artefacts")
    return final.is_dir() and isinstance(recorded, dict) and hash_tree(final) == recorded


def load_output(final: Path, entry: dict[str, Any]) -> StepOutput:
    """A completed step's artefacts read back, as downstream steps receive them."""
    return StepOutput(
        tables={n: pq.read_table(final / f"{n}.parquet") for n in entry.get("tables", [])},
        models={n: json.loads((final / f"{n}.json").read_text()) for n in entry.get("models", [])},
        files=list(entry.get("files", [])),
        report=json.loads((final / REPORT).read_text()),
    )


def read_manifest(root: Path) -> dict[str, Any]:
    """The party's manifest, or an empty one when there is none (or it is unreadable)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Atomically replace ``manifest.json``."""
    tmp = root / f".tmp-{MANIFEST}-{secrets.token_hex(4)}"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
    os.replace(tmp, root / MANIFEST)
