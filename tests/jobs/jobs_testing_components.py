"""Small components for the job runner's tests (passed through ``components=``).

They talk over the step's Context for real, so the runner's scoping, ordering
and failure handling are exercised by actual messages.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshmpc.jobs.api import StepContext, StepOutput, find_table


def _log(params: Mapping[str, Any], step: StepContext) -> None:
    if params.get("log"):
        with open(Path(params["log"]) / f"{step.party}.{step.step_id}.runs", "a") as f:
            f.write("ran\n")


async def emit(step: StepContext, inputs: Mapping[str, StepOutput],
               params: Mapping[str, Any]) -> StepOutput:
    """Table ``numbers`` = [index * scale]; report the sum of every party's value."""
    _log(params, step)
    value = step.step_parties.index(step.party) * int(params.get("scale", 1))
    await step.ctx.broadcast("value", value)
    others = await step.ctx.recv_all("value")
    step.progress(1, 2, "exchanged")
    step.progress(2, 2, "done")
    return StepOutput(tables={"numbers": pa.table({"v": [value, value + 1]})},
                      models={"emit": {"value": value}},
                      report={"total": value + sum(others.values()),
                              "ancestors": list(inputs)})


async def add(step: StepContext, inputs: Mapping[str, StepOutput],
              params: Mapping[str, Any]) -> StepOutput:
    """Sum of the nearest ``numbers`` table across the step's parties."""
    _log(params, step)
    numbers = find_table(inputs, "numbers")
    mine = 0 if numbers is None else int(sum(numbers.column("v").to_pylist()))
    await step.ctx.broadcast("sum", mine)
    total = mine + sum((await step.ctx.recv_all("sum")).values())
    return StepOutput(tables={"numbers": pa.table({"v": [total]})},
                      report={"total": total, "ancestors": list(inputs)})


async def fail(step: StepContext, inputs: Mapping[str, StepOutput],
               params: Mapping[str, Any]) -> StepOutput:
    """Party ``params.at`` raises (after writing a file); the others wait for it forever."""
    (step.workdir / "partial.bin").write_bytes(b"half")
    if step.party == params["at"]:
        await asyncio.sleep(float(params.get("delay", 0.0)))
        raise ValueError(f"secret detail of {step.party}: row 17 is bad")
    await step.ctx.recv(params["at"], "never-sent")
    return StepOutput()


async def crash(step: StepContext, inputs: Mapping[str, StepOutput],
                params: Mapping[str, Any]) -> StepOutput:
    """Party ``params.at`` kills its own process (as a killed node would); others wait."""
    if step.party == params["at"]:
        await asyncio.sleep(float(params.get("delay", 0.2)))
        os._exit(17)
    await step.ctx.recv(params["at"], "never-sent")
    return StepOutput()


async def private(step: StepContext, inputs: Mapping[str, StepOutput],
                  params: Mapping[str, Any]) -> StepOutput:
    """Uses this party's private settings locally; sends only a public count."""
    secret = step.party_params.get("secret", "")
    await step.ctx.broadcast("count", len(step.party_params))
    counts = await step.ctx.recv_all("count")
    return StepOutput(report={"my_secret": secret, "seen": sorted(step.party_params),
                              "counts": counts})


async def litter(step: StepContext, inputs: Mapping[str, StepOutput],
                 params: Mapping[str, Any]) -> StepOutput:
    """Leaves scratch it does not list under its workdir (a careless component)."""
    (step.workdir / "tmp").mkdir()
    (step.workdir / "tmp" / "rows.csv").write_text("code\n91110108000000007X\n")
    return StepOutput(report={"ok": True})
