"""Run one job component for every party in one process over the in-memory mesh.

For tests and quick experiments without the job runner: each party gets a
:class:`~meshmpc.jobs.api.StepContext` over :func:`meshmpc.net.memory.run_parties`
and its own inputs; the same component code runs as in a real job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meshmpc.jobs.api import Component, PartyInput, StepContext, StepOutput
from meshmpc.net import Context
from meshmpc.net.memory import run_parties


def run_component(component: Component, parties: Mapping[str, PartyInput],
                  inputs: Mapping[str, Mapping[str, StepOutput]], params: Mapping[str, Any],
                  workdir: Path, party_params: Mapping[str, Mapping[str, Any]] | None = None,
                  step_id: str = "step", options: Mapping[str, Any] | None = None,
                  ) -> dict[str, StepOutput]:
    """``component`` run by every party of ``parties``; ``inputs[party]`` are its ancestors'
    outputs; returns each party's StepOutput."""
    names = list(parties)

    async def one(ctx: Context) -> StepOutput:
        step = StepContext(ctx=ctx, job_name="inprocess", step_id=step_id, party=ctx.party,
                           parties=parties, step_parties=names,
                           party_params=(party_params or {}).get(ctx.party, {}),
                           workdir=Path(workdir) / ctx.party / step_id,
                           options=options or {})
        return await component(step, inputs[ctx.party], params)

    return run_parties(names, one)
