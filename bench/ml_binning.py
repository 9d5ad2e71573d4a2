"""Benchmark of ``ml.binning``: WOE + IV of every party's features, parties as processes.

``meshmpc bench ml --op binning --rows N --features bank=8,gov=500,fin=300,telco=192
--security dishonest-majority|honest-majority --json`` (through bench/ml.py's
dispatcher, which calls :func:`run`), or directly ``meshmpc bench ml_binning ...``.
Prints one line per run set: ``{"bench": "ml.binning", "security", "rows",
"features", "parties", "wall_s", "bytes_sent", "peak_rss_mb", ...}``.

Each party is its own process over the encrypted mesh on loopback
(:func:`meshmpc.net.launch.run_local`). Each generates its synthetic aligned
table before the clock starts (one latent risk per row from a common seed, so
every party's columns carry signal; the bank also draws the label from it).
The clock covers the whole component: as-of-free fine binning, the owner
products (one ``grouped_sum`` per owner over all its features), the bank's
merging and the WOE tables. ``wall_s`` is the median over ``--repeats`` of
the slowest party; ``bytes_sent`` the busiest party's bytes in that run;
``peak_rss_mb`` the largest party process's peak. The bench checks its own
result: the bank regenerates the partners' columns (same seed) and compares
every IV with the plaintext computation (``checked``), up to
``--check-cells`` cells.
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
from meshmpc_bench._common import add_common, emit, median, wan_fields, wan_profile

from meshmpc.jobs.api import PartyInput, StepContext
from meshmpc.ml.binning_protocol import plan_party, secure_binning
from meshmpc.ml.bins import fine_bins
from meshmpc.ml.merge import MergeRules, min_rows_for
from meshmpc.net import Context

SEED = 20261201


def parse_features(text: str) -> dict[str, int]:
    """``bank=8,gov=500,...`` -> {party: features}, in the order given."""
    out: dict[str, int] = {}
    for item in text.split(","):
        party, _, count = item.partition("=")
        out[party.strip()] = int(count)
    if next(iter(out), None) is None or min(out.values()) < 0:
        raise SystemExit("--features: give party=count pairs, the label holder first")
    return out


def synthetic_table(party: str, index: int, rows: int, features: int) -> pa.Table:
    """A party's aligned columns: noisy views of the common latent risk (float32)."""
    risk = np.random.default_rng([SEED, 0]).standard_normal(rows)  # synthetic data only
    rng = np.random.default_rng([SEED, 1 + index])
    columns: dict[str, Any] = {}
    if index == 0:
        columns["y"] = (rng.random(rows) < 1 / (1 + np.exp(-(1.5 * risk - 2.2)))).astype(np.int8)
    weights = rng.normal(0.0, 0.7, features)
    for j in range(features):
        values = (weights[j] * risk + rng.standard_normal(rows)).astype(np.float32)
        if j % 7 == 3:
            values[rng.random(rows) < 0.1] = np.nan
        columns[f"{party}_{j:04d}"] = values
    return pa.table(columns)


def _step(ctx: Context, parties: list[str], workdir: Path) -> StepContext:
    specs = {p: PartyInput(p, label="y" if i == 0 else None) for i, p in enumerate(parties)}
    return StepContext(ctx=ctx, job_name="bench", step_id="bins", party=ctx.party,
                       parties=specs, step_parties=parties, party_params={},
                       workdir=workdir / ctx.party, options={"state_dir": str(workdir)})


def _plain_iv(parties: list[str], counts: dict[str, int], rows: int, bins: int,
              y: np.ndarray) -> dict[str, float]:
    """Every feature's IV computed in the clear from regenerated columns (the check)."""
    rules = MergeRules(bins, min_rows_for(rows, 0.05, 50))
    out: dict[str, float] = {}
    for i, party in enumerate(parties):
        table = synthetic_table(party, i, rows, counts[party])
        names = [c for c in table.column_names if c != "y"]
        fine = fine_bins(table, names, "quantile", bins, {}, [])
        parts = [np.stack([np.bincount(fine.groups[:, j], weights=y, minlength=f.n_bins),
                           np.bincount(fine.groups[:, j], minlength=f.n_bins)], axis=1)
                 for j, f in enumerate(fine.features)]
        layout = [f.layout() for f in fine.features]
        stacked = np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 2))
        out.update({f"{party}.{n}": p.iv for n, p in plan_party(layout, stacked, rules).items()})
    return out


async def bench_job(ctx: Context, parties: list[str], counts: dict[str, int], rows: int,
                    bins: int, security: str, triples: str, repeats: int,
                    check_cells: int, woe_dtype: str = "float32",
                    grouped_sum: str = "he") -> dict[str, Any]:
    """One party's side: build its table, run the binning ``repeats`` times."""
    index = parties.index(ctx.party)
    first = synthetic_table(ctx.party, index, rows, counts[ctx.party])
    y = first.column("y").to_numpy().astype(np.float64) if index == 0 else None
    table: pa.Table | None = first
    del first
    params = {"method": "quantile", "bins": bins, "security": security, "triples": triples,
              "woe_dtype": woe_dtype, "grouped_sum": grouped_sum}
    walls, sent, cpus = [], [], []
    checked: bool | None = None
    with tempfile.TemporaryDirectory(prefix="bench-binning-") as tmp:
        for r in range(repeats):
            # the binning frees an owner's raw columns once binned, so the table is handed
            # over (no reference kept here) and made anew, off the clock, for each run
            if table is None:
                table = synthetic_table(ctx.party, index, rows, counts[ctx.party])
            step = _step(ctx.scope(f"run{r}"), parties, Path(tmp))
            await ctx.barrier(f"ml-binning-{r}")
            before = ctx.traffic().bytes_sent
            start, cpu = time.perf_counter(), _cpu_s()
            box, table = [table], None
            outcome = await secure_binning(step, box.pop(), params)
            walls.append(time.perf_counter() - start)
            cpus.append(_cpu_s() - cpu)
            sent.append(ctx.traffic().bytes_sent - before)
    if y is not None and rows * sum(counts.values()) <= check_cells:
        plain = _plain_iv(parties, counts, rows, bins, y)
        got = outcome.report["iv_all"]
        checked = set(plain) == set(got) and all(abs(plain[k] - got[k]) < 1e-9 for k in plain)
    return {"walls": walls, "sent": sent, "cpus": cpus, "checked": checked}


def _cpu_s() -> float:
    """This party process's CPU seconds so far (user + system, every thread)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _add(parser: argparse.ArgumentParser, flag: str, **options: Any) -> None:
    """Add ``flag`` unless another benchmark of the dispatcher already added it."""
    if flag not in parser._option_string_actions:  # noqa: SLF001 - argparse has no query API
        parser.add_argument(flag, **options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the binning benchmark (shared with bench/ml.py's dispatcher, which
    may already define some of them: those are left as they are)."""
    _add(parser, "--rows", type=int, default=20_000)
    _add(parser, "--features", default="bank=8,gov=120,fin=64,telco=29",
         help="party=count pairs, the label holder first")
    _add(parser, "--bins", type=int, default=10)
    _add(parser, "--security", choices=["dishonest-majority", "honest-majority"],
         default="dishonest-majority")
    _add(parser, "--triples", choices=["ot", "dealer"], default="ot",
         help="semi2k correlations: ot (default) or dealer (insecure, benchmarks only)")
    _add(parser, "--check-cells", type=int, default=20_000_000,
         help="check IVs against the plaintext up to rows x features cells")
    _add(parser, "--timeout", type=float, default=3600.0)
    _add(parser, "--woe-dtype", choices=["float32", "float64"], default="float32",
         help="dtype of the WOE tables (float32: half the memory of wide tables)")
    _add(parser, "--grouped-sum", choices=["he", "product"], default="he",
         help="label counts: he (BFV grouped sums, default) or product (OwnerProduct)")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the benchmark and return its JSON records (the dispatcher's entry point)."""
    from meshmpc.net.launch import run_local

    counts = parse_features(args.features)
    parties = list(counts)
    kwargs = {"parties": parties, "counts": counts, "rows": args.rows, "bins": args.bins,
              "security": args.security, "triples": args.triples, "repeats": args.repeats,
              "check_cells": args.check_cells, "woe_dtype": args.woe_dtype,
              "grouped_sum": args.grouped_sum}
    results = run_local(parties, "meshmpc_bench.ml_binning:bench_job", kwargs,
                        wan=wan_profile(args), timeout=args.timeout, pin_cpus=False)
    runs = len(results[parties[0]]["walls"])
    walls = [max(r["walls"][i] for r in results.values()) for i in range(runs)]
    sent = [max(r["sent"][i] for r in results.values()) for i in range(runs)]
    best = int(np.argsort(walls)[len(walls) // 2])
    record: dict[str, Any] = {
        "bench": "ml.binning", "security": args.security, "rows": args.rows,
        "features": sum(counts.values()), "parties": len(parties),
        "wall_s": round(median(walls), 3), "bytes_sent": int(sent[best]),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results.values()), 1),
        "cpu_s": round(sum(r["cpus"][best] for r in results.values()), 1),
        "cpu_s_per_party": {p: round(r["cpus"][best], 1) for p, r in results.items()},
        "load": _load(), "features_per_party": counts, "bins": args.bins,
        "grouped_sum": args.grouped_sum,
        "triples": args.triples if args.security == "dishonest-majority" else "none",
        "checked": results[parties[0]]["checked"], "runs": runs,
        "walls": [round(w, 3) for w in walls], **wan_fields(args),
    }
    return [record]


def _load() -> str:
    """The machine's load averages (/proc/loadavg), to read the wall times against."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench ml_binning", description=__doc__)
    add_arguments(parser)
    add_common(parser)
    parser.set_defaults(repeats=3)
    args = parser.parse_args(argv)
    (record,) = run(args)
    emit(record, args.json)
    return 0 if record["checked"] is not False else 1
