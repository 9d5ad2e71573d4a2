"""``meshmpc bench supervision --banks 5 --loans 1000000 --json``: cross-bank fund-flow
statistics (``supervision.fundflow``), every party a separate process over the encrypted
mesh on loopback, the banks' Parquet files in and the regulator's table out.

Prints ``{"bench": "supervision.fundflow", "banks", "loans_per_bank", "wall_s",
"bytes_sent", "peak_rss_mb", "cells", "published", "result_ok"}``; ``wall_s`` is the job
(reading, totals, sharing, the secure threshold and opening), not the data generation.
The published cells are checked against a pandas group-by of the pooled loans.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from meshmpc_bench._common import add_common, emit, median, wan_profile


def run_once(args: argparse.Namespace, work: Path, paths: dict[str, Path]) -> dict[str, Any]:
    from meshmpc_supervision.datagen import job_file

    from meshmpc.jobs.artefacts import read_local_table
    from meshmpc.jobs.local import run_job_local

    job = job_file(work, paths, triples=args.triples)
    start = time.perf_counter()
    results = run_job_local(job, work / f"run-{time.time_ns()}", wan=wan_profile(args))
    wall = time.perf_counter() - start
    folder = Path(results["pboc"]["out"]) / "fundflow"
    table = read_local_table(folder / "fundflow.parquet").to_pandas()
    return {"wall_s": wall, "table": table, "report": results["pboc"]["steps"]["fundflow"],
            "bytes_sent": sum(r.get("bytes_sent", 0) for r in results.values()),
            "peak_rss_mb": max(r.get("peak_rss_mb", 0) or 0 for r in results.values())}


def check(table: Any, paths: dict[str, Path]) -> bool:
    """The published cells equal the pooled plaintext group-by (min_count 10, 2 banks)."""
    import pandas as pd
    import pyarrow.parquet as pq
    from meshmpc_supervision.datagen import FLAGS, bank_type

    frames = []
    for number, (party, path) in enumerate(paths.items(), start=1):
        frame = pq.read_table(path, columns=["region", "month", "amount_fen", *FLAGS]
                              ).to_pandas()
        frame["institution_type"], frame["bank"] = bank_type(number), party
        frame["flagged"] = frame[list(FLAGS)].any(axis=1)
        frames.append(frame)
    pooled = pd.concat(frames)
    grouped = pooled.groupby(["region", "institution_type", "month"]).agg(
        loans=("flagged", "size"), flagged=("flagged", "sum"), banks=("bank", "nunique"))
    passing = grouped[(grouped.loans >= 10) & (grouped.banks >= 2)]
    got = table.set_index(["region", "institution_type", "month"]).sort_index()
    return len(got) == len(passing) and bool(
        (got["loans"] == passing.loc[got.index, "loans"]).all()
        and (got["flagged"] == passing.loc[got.index, "flagged"]).all()
        and _medians_match(got, pooled))


def _medians_match(got: Any, pooled: Any) -> bool:
    """The published medians are the buckets of the pooled ceil(N/2)-th smallest amounts."""
    import numpy as np
    from meshmpc_supervision.fundflow import bucket_middle, bucket_of

    edges = np.geomspace(1e6, 1e12, 65)
    pooled = pooled.sort_values("amount_fen", kind="stable")
    grouped = pooled.groupby(["region", "institution_type", "month"]).amount_fen
    kth = grouped.apply(lambda a: a.iloc[int(np.ceil(len(a) / 2)) - 1])
    expected = bucket_middle(edges, bucket_of(kth.loc[got.index].to_numpy(), edges))
    return bool((got["amount_p50_fen"].to_numpy() == expected).all())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench supervision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banks", type=int, default=5)
    parser.add_argument("--loans", type=int, default=100_000, help="loans per bank")
    parser.add_argument("--triples", choices=["ot", "dealer"], default="ot",
                        help="semi2k correlations: ot (default) or dealer (tests only)")
    add_common(parser)
    parser.set_defaults(repeats=1)
    args = parser.parse_args(argv)
    try:
        from meshmpc_supervision.datagen import write_banks
    except ImportError:
        print("meshmpc bench supervision: install apps/supervision (make install)",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="meshmpc-supervision-") as tmp:
        work = Path(tmp)
        paths = write_banks(work / "data", args.banks, args.loans)
        runs = [run_once(args, work, paths) for _ in range(args.repeats)]
        ok = check(runs[-1]["table"], paths)
    report = runs[-1]["report"]["report"]
    emit({"bench": "supervision.fundflow", "banks": args.banks, "loans_per_bank": args.loans,
          "wall_s": round(median([r["wall_s"] for r in runs]), 3),
          "bytes_sent": runs[-1]["bytes_sent"], "peak_rss_mb": runs[-1]["peak_rss_mb"],
          "cells": report["cells"], "published": report["published"], "result_ok": ok,
          "runs": args.repeats}, args.json)
    return 0 if ok else 1
