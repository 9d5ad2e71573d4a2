"""The job file parser: YAML text written to a file, loaded and checked field by field."""

from __future__ import annotations

import tempfile
from pathlib import Path

from meshmpc.jobs.errors import JobFileError
from meshmpc.jobs.spec import load_job

FOLDER = Path(tempfile.mkdtemp(prefix="fuzz-jobs-"))


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    path = FOLDER / "job.yaml"
    path.write_bytes(data)
    try:
        spec = load_job(path)
    except JobFileError:
        return
    assert spec.parties and spec.steps, "a job without parties or steps was accepted"
    spec.public_digest()
    ids = [s.id for s in spec.steps]
    assert len(set(ids)) == len(ids), "duplicate step ids accepted"
    position = {s: i for i, s in enumerate(ids)}
    for step in spec.steps:
        assert all(position[d] < position[step.id] for d in step.after), "not topological"
