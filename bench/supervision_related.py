"""``meshmpc bench supervision_related --banks 3 --borrowers 100000 --links 1000000 --json``:
related-party exposure across banks (``supervision.related``), every party a separate
process over the encrypted mesh on loopback.

Prints ``{"bench": "supervision.related", "banks", "borrowers_per_bank", "links",
"wall_s", "bytes_sent", "peak_rss_mb", "groups", "multi_bank_groups", "result_ok"}``;
``wall_s`` is the job (components, totals, sharing, the secure products and the
per-bank openings), not the data generation. The regulator's groups are checked against a pandas
computation on the pooled borrowers over the same components.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from meshmpc_bench._common import add_common, emit


def _check(registry: Path, paths: dict[str, Path], got: Any) -> bool:
    import pandas as pd
    import pyarrow.parquet as pq
    from meshmpc_supervision.related import registry_groups

    groups = registry_groups(registry)
    frames = []
    for bank, path in paths.items():
        frame = pq.read_table(path).to_pandas()
        at = groups["firms"].searchsorted(frame.credit_code.to_numpy().astype(str))
        at = at.clip(0, len(groups["firms"]) - 1)
        frame = frame[groups["firms"][at] == frame.credit_code.to_numpy().astype(str)].copy()
        frame["group"] = groups["keys"][groups["group_of"][groups["firms"].searchsorted(
            frame.credit_code.to_numpy().astype(str))]]
        frame["bank"] = bank
        frames.append(frame)
    pooled = pd.concat(frames).groupby("group").agg(banks=("bank", "nunique"),
                                                    exposure_fen=("exposure_fen", "sum"))
    expected = pooled[pooled.banks >= 2]
    got = got.set_index("group")
    return len(got) == len(expected) and bool(
        (got.exposure_fen == expected.loc[got.index, "exposure_fen"]).all())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench supervision_related",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banks", type=int, default=3)
    parser.add_argument("--borrowers", type=int, default=100_000, help="per bank")
    parser.add_argument("--links", type=int, default=1_000_000, help="registry links")
    parser.add_argument("--triples", choices=["ot", "dealer"], default="ot")
    parser.add_argument("--security", choices=["dishonest-majority", "honest-majority"],
                        default="dishonest-majority",
                        help="semi2k between regulator and co-aggregator, or rep3 with a "
                        "second bank")
    add_common(parser)
    args = parser.parse_args(argv)
    try:
        from meshmpc_supervision.datagen import related_job_file, write_related
    except ImportError:
        print("meshmpc bench supervision_related: install apps/supervision", file=sys.stderr)
        return 1
    from meshmpc.jobs.artefacts import read_local_table
    from meshmpc.jobs.local import run_job_local

    with tempfile.TemporaryDirectory(prefix="meshmpc-related-") as tmp:
        work = Path(tmp)
        registry, paths = write_related(work / "data", args.banks, args.borrowers, args.links)
        job = related_job_file(work, registry, paths, security=args.security,
                               triples=args.triples if args.security != "honest-majority"
                               else "none")
        start = time.perf_counter()
        results = run_job_local(job, work / "run", timeout=1800)
        wall = time.perf_counter() - start
        folder = Path(results["pboc"]["out"]) / "related"
        got = read_local_table(folder / "related_groups.parquet").to_pandas()
        ok = _check(registry, paths, got)
    report = results["pboc"]["steps"]["related"]["report"]
    emit({"bench": "supervision.related", "security": args.security, "banks": args.banks,
          "borrowers_per_bank": args.borrowers, "links": args.links, "wall_s": round(wall, 3),
          "bytes_sent": sum(r.get("bytes_sent", 0) for r in results.values()),
          "peak_rss_mb": max(r.get("peak_rss_mb", 0) or 0 for r in results.values()),
          "groups": report["groups"], "multi_bank_groups": report["multi_bank_groups"],
          "result_ok": ok}, args.json)
    return 0 if ok else 1
