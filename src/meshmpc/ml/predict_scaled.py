"""``ml.predict`` batch scoring on Ray: row partitions scored by worker pairs.

With ``party_params.<me>.ray`` (both parties of a two-party step) the rows of
the ``features`` table are handed over by the job runner as sealed Parquet row
partitions (:mod:`meshmpc.jobs.datasets`), partition k holding the same
aligned rows at both parties. The partitions become the items of
:func:`meshmpc.scale.run_on_ray`: worker k of the bank and worker k of the
partner (keys vouched for over the identity link, :mod:`meshmpc.scale.pair`)
each read partition k, compute their partial scores with the very code of the
single-process run (:func:`meshmpc.ml.step_data.feature_matrix`, the
scorecard's points or ``x @ w``), and run :func:`meshmpc.ml.predict.sum_to`
over their pair mesh: the bank's worker learns the total of each row of
partition k and nothing else, exactly as in one process, and writes them as
one sealed Parquet partition. The bank's coordinator reads the partitions back
in order: the same scores in the same row order as the single-process run
(totals are fixed-point ring sums on a 2^-16 grid; a partial differing in its
last bit because BLAS summed a slice in another order moves a total by one
grid step with probability about 2^-36 per row). A lost worker's partitions are
scored again by a fresh pair (:mod:`meshmpc.scale.coordinator`).

Scope: scorecard models and plain (not strict) logistic models, two parties.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa

from meshmpc.data.vault import Vault
from meshmpc.jobs.api import PartyInput, StepContext, StepOutput
from meshmpc.jobs.datasets import DatasetHandOver, TableDataset
from meshmpc.ml.model_io import read_logistic_model
from meshmpc.ml.predict import sum_to
from meshmpc.ml.scorecard import PartyScorecard
from meshmpc.ml.step_data import StepDataError, feature_matrix
from meshmpc.net import Context
from meshmpc.scale import PairWork, RayOptions, ScaleConfigError, parse_ray_options, run_on_ray


@dataclass(frozen=True)
class StepView:
    """What the per-row code of a step reads of its StepContext (picklable, for workers)."""

    party: str
    step_id: str
    parties: Mapping[str, PartyInput]


@dataclass(frozen=True)
class PartialScorer:
    """This party's partial score of a table's rows: a scorecard or plain logistic model."""

    kind: str  # "scorecard" | "logistic"
    model: Mapping[str, Any]
    params: Mapping[str, Any]

    def partial(self, view: StepView, table: pa.Table) -> np.ndarray:
        """Per-row partial scores, computed as the single-process ``ml.predict`` does."""
        step = cast(StepContext, view)
        inputs = {"part": StepOutput(tables={"features": table, "aligned": table})}
        if self.kind == "scorecard":
            card = PartyScorecard.from_dict(self.model)
            names, x = feature_matrix(step, inputs, self.params)
            _check_columns(view, names, [f.name for f in card.features])
            return np.asarray(card.partial_from_woe(x), dtype=np.float64)
        lr = read_logistic_model(self.model, view.party)
        names, x = feature_matrix(step, inputs, {**self.params, "features": lr.source},
                                  lr.stats)
        _check_columns(view, names, lr.features)
        return np.asarray(x @ lr.weights + (lr.intercept or 0.0), dtype=np.float64)


def _check_columns(view: StepView, have: list[str], want: list[str]) -> None:
    if have != want:
        raise StepDataError(f"party {view.party}, step {view.step_id}: the features table has "
                            f"columns {have[:8]} but the model was trained on {want[:8]}")


def ray_setting(step: StepContext) -> RayOptions | None:
    """This party's ``ray:`` setting of the step (``party_params``), or None."""
    return parse_ray_options(step.party_params.get("ray"),
                             f"party {step.party}, step {step.step_id}: party_params.ray")


def peer_of(step: StepContext) -> str:
    """The one other party of a two-party scaled-out step."""
    if len(step.step_parties) != 2:
        raise ScaleConfigError(f"party {step.party}, step {step.step_id}: `ray:` scale-out "
                               f"runs two-party steps; this one has {step.step_parties}")
    return next(p for p in step.step_parties if p != step.party)


async def agree_partitions(ctx: Context, step: StepContext, peer: str, rows: int,
                           options: RayOptions) -> int:
    """The partition size both use (the smaller wish); both must hold the same rows."""
    theirs = await ctx.exchange(peer, "partitions", {"rows": rows,
                                                    "partition_rows": options.partition_rows})
    if not isinstance(theirs, dict) or not isinstance(theirs.get("partition_rows"), int) \
            or theirs["partition_rows"] < 1:
        raise ScaleConfigError(f"party {step.party}, step {step.step_id}: {peer} sent a "
                               f"malformed partition plan")
    if theirs.get("rows") != rows:
        raise StepDataError(f"party {step.party}, step {step.step_id}: {rows} rows here but "
                            f"{theirs.get('rows')!r} at {peer}: both must score the aligned "
                            f"rows of the same psi.align")
    return min(options.partition_rows, int(theirs["partition_rows"]))


def handed_dataset(step: StepContext, name: str, partition_rows: int) -> TableDataset:
    """The runner's dataset of table ``name`` (it hands one to every step set to ``ray``)."""
    handover = step.options.get("datasets")
    if not isinstance(handover, DatasetHandOver):
        raise ScaleConfigError(f"party {step.party}, step {step.step_id}: a `ray:` step needs "
                               f"its inputs as a dataset from the job runner; run it as a "
                               f"job step (meshmpc job run)")
    dataset = handover.get(name, partition_rows)
    if dataset is None:
        raise StepDataError(f"party {step.party}, step {step.step_id}: no {name!r} table from "
                            f"an earlier step")
    return dataset


async def score_partition(ctx: Context, item: int, state: dict[str, Any], *, view: StepView,
                          bank: str, dataset: TableDataset, scorer: PartialScorer,
                          out_dir: str) -> dict[str, Any]:
    """One partition on a worker: read it, score it, sum at the bank, write the totals."""
    start, cpu = time.perf_counter(), time.process_time()
    table = await asyncio.to_thread(dataset.read, item)
    partial = scorer.partial(view, table)
    total = await sum_to(ctx.scope(f"part/{item}"), bank, partial)
    if total is not None:
        path = totals_path(Path(out_dir), item)
        vault = Vault(dataset.vault_key, dataset.suite)
        await asyncio.to_thread(vault.write_table, path, pa.table({"total": total}), path.name)
    return {"rows": int(table.num_rows), "seconds": round(time.perf_counter() - start, 4),
            "cpu_s": round(time.process_time() - cpu, 4)}


def totals_path(directory: Path, item: int) -> Path:
    return directory / f"totals-{item:05d}.parquet"


async def scores_on_ray(step: StepContext, options: RayOptions, bank: str, rows: int,
                        scorer: PartialScorer, params: Mapping[str, Any]
                        ) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The totals of every row at the bank (None elsewhere) and the scale report."""
    peer = peer_of(step)
    ctx = step.ctx.scope("scores-ray")
    partition_rows = await agree_partitions(ctx, step, peer, rows, options)
    dataset = handed_dataset(step, "aligned" if params.get("features") == "raw"
                             else "features", partition_rows)
    out_dir = dataset.directory.parent / f"{dataset.directory.name}-scores"
    out_dir.mkdir(exist_ok=True)
    view = StepView(step.party, step.step_id, dict(step.parties))
    work = PairWork(score_partition, out_dir / "done",
                    {"view": view, "bank": bank, "dataset": dataset, "scorer": scorer,
                     "out_dir": str(out_dir)})
    scale = await run_on_ray(ctx, peer, list(range(dataset.partitions)), work, options,
                             quiet=False)
    report = {**scale.to_dict(), "partitions": dataset.partitions,
              "partition_rows": partition_rows, **partition_costs(scale.results)}
    if step.party != bank:
        return None, report
    vault = Vault(dataset.vault_key, dataset.suite)
    parts = [vault.read_table(totals_path(out_dir, k), totals_path(out_dir, k).name)
             .column("total").to_numpy() for k in range(dataset.partitions)]
    return np.concatenate(parts) if parts else np.zeros(0), report


def partition_costs(results: Mapping[int, Mapping[str, Any]]) -> dict[str, float]:
    """Mean wall and CPU seconds of a partition on its worker (the cost model's terms;
    CPU seconds say more than wall time on a loaded machine)."""
    if not results:
        return {}
    return {f"partition_{key}_mean": round(sum(float(r[name]) for r in results.values())
                                           / len(results), 4)
            for key, name in (("s", "seconds"), ("cpu_s", "cpu_s"))}


def _scorer(step: StepContext, inputs: Mapping[str, StepOutput],
            params: Mapping[str, Any]) -> PartialScorer:
    """The model ml.predict would use here, as a scorer the workers can run."""
    from meshmpc.jobs.api import find_model

    card, lr = find_model(inputs, "scorecard"), find_model(inputs, "logistic")
    if find_model(inputs, "mlp") is not None and (params.get("use") == "mlp"
                                                 or (card is None and lr is None)):
        raise ScaleConfigError(f"party {step.party}, step {step.step_id}: an ml.mlp model is "
                               f"scored jointly in shares, not on Ray yet; remove `ray:`")
    if card is not None and params.get("use", "scorecard") == "scorecard":
        return PartialScorer("scorecard", card, dict(params))
    if lr is None:
        raise StepDataError(f"party {step.party}, step {step.step_id}: ml.predict needs an "
                            f"ml.logistic or ml.scorecard step before it")
    if read_logistic_model(lr, step.party).strict:
        raise ScaleConfigError(f"party {step.party}, step {step.step_id}: a strict logistic "
                               f"model is scored jointly in shares, not on Ray yet; remove "
                               f"`ray:`")
    return PartialScorer("logistic", lr, dict(params))


async def predict_on_ray(step: StepContext, inputs: Mapping[str, StepOutput],
                         params: Mapping[str, Any], options: RayOptions,
                         bank: str) -> StepOutput:
    """``ml.predict`` with ``ray:``: the single-process outputs, scored by partitions."""
    from meshmpc.jobs.api import find_table
    from meshmpc.ml.components_model import _scores_table
    from meshmpc.ml.step_data import step_roles

    scorer = _scorer(step, inputs, params)
    source = "raw" if scorer.kind == "logistic" and \
        read_logistic_model(scorer.model, step.party).source == "raw" else params.get("features")
    name = "aligned" if source == "raw" else "features"
    table = find_table(inputs, name)
    if table is None:
        raise StepDataError(f"party {step.party}, step {step.step_id}: no {name!r} table from "
                            f"an earlier step")
    total, scale = await scores_on_ray(step, options, bank, table.num_rows, scorer,
                                       {**params, "features": source})
    out = StepOutput(report={"scale": scale})
    if total is None:
        return out
    if scorer.kind == "scorecard":
        out.tables["scores"] = _scores_table(inputs, total,
                                             PartyScorecard.from_dict(scorer.model).params)
    else:
        roles = step_roles(inputs, total.size)
        out.tables["scores"] = pa.table({"row": np.arange(total.size), "role": roles,
                                         "z": total, "probability": 1.0 / (1.0 + np.exp(-total))})
    return out
