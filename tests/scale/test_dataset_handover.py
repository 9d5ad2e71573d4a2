"""The job runner hands a step set to `ray` its tables as sealed Parquet row partitions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from meshmpc.jobs.datasets import partition_offsets
from meshmpc.jobs.local import run_job_in_memory

COMPONENTS = {"t.emit": "runner_probe:emit", "t.probe": "runner_probe:probe"}


def test_partition_offsets() -> None:
    assert partition_offsets(7, 3) == (0, 3, 6, 7)
    assert partition_offsets(6, 3) == (0, 3, 6)
    assert partition_offsets(0, 3) == (0, 0)


def test_runner_hands_over_a_dataset_only_with_ray(tmp_path: Path) -> None:
    raw: dict[str, Any] = {
        "name": "hj", "parties": {p: {"key": "id"} for p in ("bank", "gov")},
        "steps": [{"id": "make", "component": "t.emit"},
                  {"id": "use", "component": "t.probe", "after": ["make"],
                   "party_params": {"bank": {"ray": {"workers": 2}}}}]}
    out = tmp_path / "out"
    results = asyncio.run(run_job_in_memory(raw, out, components=COMPONENTS,
                                            base_dir=tmp_path))
    got = results["bank"]["steps"]["use"]["report"]["dataset"]
    assert got["partitions"] == 3 and got["offsets"] == [0, 3, 6, 7]
    assert got["same"] and got["sealed"]  # the rows in order, never in clear on disk
    assert not Path(got["folder"]).exists()  # removed when the step ended
    assert not list((out / "hj" / "bank").glob(".tmp-*"))
    assert results["gov"]["steps"]["use"]["report"]["dataset"] is None  # no ray: unchanged
