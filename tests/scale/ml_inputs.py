"""Aligned feature tables, models and a component runner for the ml-on-Ray tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.data.vault import Vault
from meshmpc.jobs.api import PartyInput, StepContext, StepOutput
from meshmpc.jobs.datasets import DatasetHandOver
from meshmpc.ml.model_io import LOGISTIC_FORMAT, LOGISTIC_VERSION
from meshmpc.ml.scorecard import ScorecardParams, build_card
from meshmpc.net import Context
from meshmpc.net.memory import run_parties
from meshmpc.scale import RayOptions

PARTIES = ("bank", "gov")
ROWS = 2300
RAY = RayOptions(workers=2, cpus=0.5, link_timeout_s=20.0, start_timeout_s=60.0,
                 partition_rows=400)


def feature_tables(rows: int = ROWS, seed: int = 3) -> dict[str, pa.Table]:
    """WOE-like float columns per party (bank also its 0/1 label ``y``)."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=rows)
    label = (rng.random(rows) < 1 / (1 + np.exp(-(risk - 1.0)))).astype(np.int64)
    return {
        "bank": pa.table({"amount": risk + rng.normal(size=rows), "age": rng.normal(size=rows),
                          "y": label}),
        "gov": pa.table({"capital": -risk + rng.normal(size=rows),
                         "tax": rng.normal(size=rows) * 3}),
    }


def parties() -> dict[str, PartyInput]:
    return {p: PartyInput(p, key="id", label="y" if p == "bank" else None) for p in PARTIES}


def logistic(party: str, names: list[str], weights: list[float],
             intercept: float | None = None) -> dict[str, Any]:
    """A plain (not strict) logistic model dict of one party."""
    return {"format": LOGISTIC_FORMAT, "version": LOGISTIC_VERSION, "party": party,
            "features": names, "weights": weights, "intercept": intercept, "strict": False,
            "source": "woe", "stats": {}, "config": {}}


def models(kind: str) -> dict[str, dict[str, Any]]:
    """Each party's model of ``kind`` (``logistic`` or ``scorecard``)."""
    lr = {"bank": logistic("bank", ["amount", "age"], [0.8, -0.3], -1.2),
          "gov": logistic("gov", ["capital", "tax"], [-0.5, 0.05])}
    if kind == "logistic":
        return lr
    return {p: build_card(p, m["features"], np.asarray(m["weights"]), ScorecardParams(), None,
                          m["intercept"]).to_dict() for p, m in lr.items()}


def run_step(component: Any, kind: str, tmp: Path, ray: RayOptions | None,
             tables: dict[str, pa.Table] | None = None,
             params: dict[str, Any] | None = None) -> dict[str, StepOutput]:
    """``component`` on both parties (in memory), with the runner's dataset hand-over
    when ``ray`` is set (as meshmpc.jobs.runner does for a step set to ``ray``)."""
    tables = tables or feature_tables()
    name = "aligned" if kind == "binning" else "features"
    inputs = {p: {"prev": StepOutput(tables={name: tables[p]},
                                     models={} if kind == "binning" else
                                     {kind: models(kind)[p]})} for p in PARTIES}
    party_params: dict[str, dict[str, Any]] = {p: {} for p in PARTIES}
    if kind == "binning":
        party_params["bank"]["min_bin_rows"] = 20
    if ray is not None:
        for p in PARTIES:
            party_params[p]["ray"] = ray.to_dict()

    async def one(ctx: Context) -> StepOutput:
        me = ctx.party
        handover = DatasetHandOver(inputs[me], tmp / "datasets" / me, Vault.ephemeral())
        step = StepContext(ctx=ctx, job_name="t", step_id="s", party=me, parties=parties(),
                           step_parties=list(PARTIES), party_params=party_params[me],
                           workdir=tmp / "out" / me,
                           options={"datasets": handover} if ray is not None else {})
        try:
            return await component(step, inputs[me], params or {})
        finally:
            handover.close()

    return run_parties(list(PARTIES), one)


class CrashOnce:
    """A partition target that ends its worker process abruptly (as a SIGKILL would) the
    first time ``party``'s worker reaches ``item``, then scores as usual."""

    def __init__(self, target: Any, party: str, item: int, flag: Path) -> None:
        self.target, self.party, self.item, self.flag = target, party, item, str(flag)

    async def __call__(self, ctx: Context, item: int, state: dict[str, Any],
                       **args: Any) -> dict[str, Any]:
        if ctx.party == self.party and item == self.item and not Path(self.flag).exists():
            Path(self.flag).write_text("crashed")
            os._exit(1)
        result: dict[str, Any] = await self.target(ctx, item, state, **args)
        return result
