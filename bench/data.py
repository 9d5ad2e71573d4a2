"""``meshmpc bench data``: reference-data generation and quality checks at scale.

* ``data.datagen``: ``generate(rows, seed)`` for all four parties (Parquet),
  each run in a fresh process so ``peak_rss_mb`` is that run's own peak;
  ``rows_per_s`` counts rows per party.
* ``data.check``: the full quality check of each party's file against its
  schema (``meshmpc data check`` without writing reports); ``cells_per_s``
  counts rows x schema columns.

Figures are medians over ``--repeats`` runs (peak RSS: the maximum);
``cpu_seconds`` (user + system, all threads) shows how much of the wall time
was our own work on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from meshmpc_bench._common import emit, median

from meshmpc.data import check, load_schema

_CHILD = """
import json, resource, sys, time
from meshmpc_credit.datagen import generate
rows, months, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
generate(out, rows, seed=7, months=months)
took = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": took, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def _generate_once(rows: int, months: int, out: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(rows), str(months), str(out)],
                          check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_datagen(rows: int, months: int, repeats: int, out: Path) -> dict[str, Any]:
    runs = [_generate_once(rows, months, out) for _ in range(repeats)]
    seconds = median([r["seconds"] for r in runs])
    return {"bench": "data.datagen", "rows": rows, "parties": 4, "months": months,
            "format": "parquet", "seconds": round(seconds, 3),
            "cpu_seconds": round(median([r["cpu_seconds"] for r in runs]), 3),
            "rows_per_s": round(rows / seconds), "peak_rss_mb": round(
                max(r["peak_rss_mb"] for r in runs), 1), "repeats": repeats}


def bench_check(party: str, out: Path, repeats: int) -> dict[str, Any]:
    schema = load_schema(out / f"{party}.schema.toml")
    times, cpu, rows = [], [], 0
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        report = check(schema, out / f"{party}.parquet")
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        rows = report.rows
    seconds = median(times)
    return {"bench": "data.check", "party": party, "rows": rows,
            "columns": len(schema.columns), "seconds": round(seconds, 3),
            "cpu_seconds": round(median(cpu), 3),
            "rows_per_s": round(rows / seconds),
            "cells_per_s": round(rows * len(schema.columns) / seconds), "ok": report.ok,
            "repeats": repeats}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench data", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one JSON object per result line")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per party")
    parser.add_argument("--months", type=int, default=0,
                        help="monthly snapshots per applicant (default 0: main tables only)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meshmpc-bench-data-") as folder:
        out = Path(folder)
        emit(bench_datagen(args.rows, args.months, args.repeats, out), args.json)
        for party in ("bank", "gov", "fin", "telco"):
            emit(bench_check(party, out, args.repeats), args.json)
    return 0
