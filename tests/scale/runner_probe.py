"""Job components for the dataset hand-over test: a table, and a step that reads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from meshmpc.jobs.api import StepContext, StepOutput, find_table
from meshmpc.jobs.datasets import DatasetHandOver

ROWS = 7


async def emit(step: StepContext, inputs: Mapping[str, StepOutput],
               params: Mapping[str, Any]) -> StepOutput:
    """A table ``numbers`` of ROWS rows (values differ per party)."""
    base = 100 * step.step_parties.index(step.party)
    return StepOutput(tables={"numbers": pa.table({"v": list(range(base, base + ROWS))})})


async def probe(step: StepContext, inputs: Mapping[str, StepOutput],
                params: Mapping[str, Any]) -> StepOutput:
    """What the runner handed over: the dataset's partitions and rows, or nothing."""
    handover = step.options.get("datasets")
    if not isinstance(handover, DatasetHandOver):
        return StepOutput(report={"dataset": None})
    dataset = handover.get("numbers", 3)
    assert dataset is not None and handover.get("absent", 3) is None
    table = find_table(inputs, "numbers")
    return StepOutput(report={"dataset": {
        "partitions": dataset.partitions, "offsets": list(dataset.offsets),
        "same": dataset.read_all().equals(table), "folder": str(dataset.directory),
        "sealed": not dataset.path(0).read_bytes().startswith(b"PAR1")}})
