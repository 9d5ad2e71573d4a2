"""Row-partitioned ml steps on a local Ray cluster: ``meshmpc bench ml --op predict|binning_ray``.

``meshmpc bench ml --op predict --rows N --ray-workers 2 --partition-rows R --json``
scores N aligned rows (a plain logistic model over ``--ray-cols`` WOE-like
columns per party, synthetic data from a fixed seed) once in one process per
party and once with ``ray: {workers: W, partition_rows: R}``;
``--op binning_ray`` does the same for ml.binning (HE label counts, ``--bins``).
Both coordinators run in this process over the in-memory mesh, as drivers of a
Ray head this process starts on loopback (the workers are Ray processes and
talk over their own TCP pair meshes). One JSON line: both walls, whether the
outputs are identical (scores bit for bit; binning models, WOE tables and IV),
partitions, mean seconds per partition, each worker's peak RSS and the workers'
bytes per partition.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.data.vault import Vault
from meshmpc.jobs.api import PartyInput, StepContext, StepOutput
from meshmpc.jobs.datasets import DatasetHandOver
from meshmpc.ml.model_io import LOGISTIC_FORMAT, LOGISTIC_VERSION
from meshmpc.net import Context
from meshmpc.net.memory import run_parties

PARTIES = ("bank", "gov")
SEED = 20261


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the Ray ml ops (bench/ml.py may have defined some already)."""
    for flag, kwargs in (("--ray-workers", {"type": int, "default": 2}),
                         ("--partition-rows", {"type": int, "default": 1 << 18}),
                         ("--ray-cols", {"type": int, "default": 10}),
                         ("--rows", {"type": int, "default": 100_000}),
                         ("--bins", {"type": int, "default": 10})):
        if flag not in parser._option_string_actions:  # noqa: SLF001 - shared parser
            parser.add_argument(flag, **kwargs)  # type: ignore[arg-type]


def _tables(rows: int, cols: int) -> dict[str, pa.Table]:
    rng = np.random.default_rng(SEED)
    risk = rng.normal(size=rows)
    label = (rng.random(rows) < 1 / (1 + np.exp(-(risk - 1.5)))).astype(np.int64)
    out = {}
    for i, party in enumerate(PARTIES):
        columns: dict[str, np.ndarray] = {
            f"{party}_{j}": (risk * (j % 3 - 1) + rng.normal(size=rows)).round(3)
            for j in range(cols)}
        if i == 0:
            columns["y"] = label
        out[party] = pa.table(columns)
    return out


def _model(party: str, cols: int) -> dict[str, Any]:
    weights = [0.1 * ((j % 5) - 2) for j in range(cols)]
    return {"format": LOGISTIC_FORMAT, "version": LOGISTIC_VERSION, "party": party,
            "features": [f"{party}_{j}" for j in range(cols)], "weights": weights,
            "intercept": -1.0 if party == "bank" else None, "strict": False,
            "source": "woe", "stats": {}, "config": {}}


def _run(op: str, tables: dict[str, pa.Table], args: argparse.Namespace, tmp: Path,
         ray: dict[str, Any] | None) -> tuple[dict[str, StepOutput], float]:
    from meshmpc.ml.components_binning import binning
    from meshmpc.ml.components_model import predict

    component = predict if op == "predict" else binning
    name = "features" if op == "predict" else "aligned"
    parties = {p: PartyInput(p, key="id", label="y" if p == "bank" else None) for p in PARTIES}

    async def one(ctx: Context) -> StepOutput:
        me = ctx.party
        models = {"logistic": _model(me, args.ray_cols)} if op == "predict" else {}
        inputs = {"prev": StepOutput(tables={name: tables[me]}, models=models)}
        handover = DatasetHandOver(inputs, tmp / me, Vault.ephemeral())
        params = {**({"ray": ray} if ray else {}), **({"min_bin_rows": 20} if me == "bank"
                                                       else {})}
        step = StepContext(ctx=ctx, job_name="bench", step_id="s", party=me, parties=parties,
                           step_parties=list(PARTIES), party_params=params,
                           workdir=tmp / "out" / me, options={"datasets": handover})
        try:
            return await component(step, inputs, {"bins": args.bins} if op != "predict"
                                   else {})
        finally:
            handover.close()

    start = time.perf_counter()
    out = run_parties(list(PARTIES), one)
    return out, time.perf_counter() - start


def _same(op: str, one: dict[str, StepOutput], many: dict[str, StepOutput]) -> bool:
    if op == "predict":
        a, b = one["bank"].tables["scores"], many["bank"].tables["scores"]
        return all(np.array_equal(a.column(c).to_numpy(), b.column(c).to_numpy())
                   for c in a.column_names)
    return all(one[p].models["binning"] == many[p].models["binning"] for p in PARTIES) \
        and one["bank"].report["iv_all"] == many["bank"].report["iv_all"]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One line per invocation (see the module docstring)."""
    from meshmpc_bench._psi_ray import start_cluster

    op = "predict" if args.op == "predict" else "binning"
    address = start_cluster(args.ray_workers)
    tables = _tables(args.rows, args.ray_cols)
    ray = {"address": address, "workers": args.ray_workers, "cpus": 1.0,
           "partition_rows": args.partition_rows}
    with tempfile.TemporaryDirectory(prefix="meshmpc-bench-mlray-") as tmp:
        single, single_s = _run(op, tables, args, Path(tmp) / "one", None)
        scaled, ray_s = _run(op, tables, args, Path(tmp) / "ray", ray)
    scale = {p: scaled[p].report["scale"] for p in PARTIES}
    if op == "binning":
        scale = {"bank": scale["bank"]["gov"], "gov": scale["gov"]["bank"]}
    parts = scale["bank"]["partitions"]
    return [{
        "bench": f"ml.{op}_ray", "rows": args.rows, "cols_per_party": args.ray_cols,
        "ray_workers": args.ray_workers, "partition_rows": scale["bank"]["partition_rows"],
        "partitions": parts, "identical": _same(op, single, scaled),
        "single_wall_s": round(single_s, 3), "ray_wall_s": round(ray_s, 3),
        "ray_over_single": round(ray_s / single_s, 3),
        "partition_s_mean": {p: scale[p].get("partition_s_mean") for p in PARTIES},
        "partition_cpu_s_mean": {p: scale[p].get("partition_cpu_s_mean") for p in PARTIES},
        "worker_peak_rss_mb": {p: scale[p]["worker_peak_rss_mb"] for p in PARTIES},
        "worker_bytes_sent_per_partition": {p: round(scale[p]["worker_bytes_sent"] / parts)
                                            for p in PARTIES},
        "ray_stages": {p: {k: scale[p][k] for k in ("start_s", "run_s")} for p in PARTIES},
        "retries": {p: scale[p]["retries"] for p in PARTIES},
        "coordinators_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_avg": Path("/proc/loadavg").read_text().split()[:3],
    }]
