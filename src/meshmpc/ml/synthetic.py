"""Synthetic vertical data and in-process step runs, for tests and benchmarks only.

:func:`vertical_woe_data` makes the artefacts ``ml.binning`` would hand to the
model components (per party: a ``features`` table of WOE floats, a
``binning`` model in its documented format; at the bank also the label),
from a latent logistic model whose signal is spread over the parties, with
plaintext quantile bins and WOE = ln(%bad / %good). Synthetic data may use
numpy's generator (it is not protocol randomness).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.jobs.api import Component, PartyInput, StepContext, StepOutput
from meshmpc.net import Context
from meshmpc.net.memory import run_parties

LABEL = "default_12m"


@dataclass
class VerticalData:
    """Raw values, WOE features and binning models per party; labels at the bank."""

    raw: dict[str, np.ndarray]
    woe: dict[str, np.ndarray]
    binning: dict[str, dict[str, Any]]
    labels: np.ndarray
    names: dict[str, list[str]]

    def features_table(self, party: str, bank: str = "bank") -> pa.Table:
        columns = {n: self.woe[party][:, j] for j, n in enumerate(self.names[party])}
        if party == bank:
            columns[LABEL] = self.labels.astype(np.int64)
        return pa.table(columns)

    def raw_table(self, party: str) -> pa.Table:
        return pa.table({n: self.raw[party][:, j] for j, n in enumerate(self.names[party])})


def _quantile_woe(values: np.ndarray, y: np.ndarray, bins: int
                  ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    index = np.searchsorted(cuts, values, side="right")
    bad = np.bincount(index, weights=y, minlength=cuts.size + 1) + 0.5
    good = np.bincount(index, weights=1 - y, minlength=cuts.size + 1) + 0.5
    woe = np.log((bad / bad.sum()) / (good / good.sum()))
    edges = [None, *cuts.tolist(), None]
    described = [{"edges": [edges[i], edges[i + 1]], "count": int((index == i).sum()),
                  "woe": float(woe[i])} for i in range(cuts.size + 1)]
    return woe[index], described


def vertical_woe_data(n: int, widths: Mapping[str, int], seed: int = 0, bins: int = 8,
                      strength: float = 0.8, base_rate: float = 0.1) -> VerticalData:
    """Rows split by column among ``widths`` (party -> feature count)."""
    rng = np.random.default_rng(seed)
    raw = {p: rng.normal(size=(n, d)) for p, d in widths.items()}
    latent = sum(raw[p] @ rng.normal(size=d) for p, d in widths.items() if d)
    latent = np.asarray(latent) / max(float(np.std(latent)), 1e-9)
    z = strength * 2.0 * latent + np.log(base_rate / (1 - base_rate))
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    woe, binning, names = {}, {}, {}
    for party, d in widths.items():
        names[party] = [f"{party}_f{j}" for j in range(d)]
        cols, feats = [], {}
        for j, name in enumerate(names[party]):
            col, described = _quantile_woe(raw[party][:, j], y, bins)
            cols.append(col)
            feats[name] = {"type": "numeric", "bins": described}
        woe[party] = np.column_stack(cols) if cols else np.zeros((n, 0))
        binning[party] = {"version": 1, "party": party, "default_woe": 0.0,
                          "features": feats, "order": names[party]}
    return VerticalData(raw, woe, binning, y, names)


def party_inputs(parties: list[str], bank: str = "bank") -> dict[str, PartyInput]:
    return {p: PartyInput(party=p, key="credit_code",
                          label=LABEL if p == bank else None) for p in parties}


def run_step(component: Component, parties: Mapping[str, PartyInput],
             inputs: Mapping[str, Mapping[str, StepOutput]], params: Mapping[str, Any],
             workdir: Path, step_id: str = "step") -> dict[str, StepOutput]:
    """Run ``component`` for every party in this process over the in-memory mesh."""
    names = list(parties)

    async def one(ctx: Context) -> StepOutput:
        folder = Path(workdir) / ctx.party / step_id
        folder.mkdir(parents=True, exist_ok=True)
        step = StepContext(ctx=ctx.scope(step_id), job_name="test", step_id=step_id,
                           party=ctx.party, parties=parties, step_parties=names,
                           party_params={}, workdir=folder)
        return await component(step, inputs[ctx.party], params)

    return run_parties(names, one)
