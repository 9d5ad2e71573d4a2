"""``meshmpc-supervision`` (also ``meshmpc supervision``): reference data and the demo."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from meshmpc.errors import MeshMPCError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser("datagen", help="loan-level reference data of several banks "
                                "/ 多家银行的贷款明细参考数据")
    gen.add_argument("--banks", type=int, default=5, help="number of banks (default 5)")
    gen.add_argument("--loans", type=int, default=100_000, help="loans per bank (100000)")
    gen.add_argument("--out", type=Path, default=Path("out/supervision/data"))
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(func=_datagen)
    demo = subparsers.add_parser("demo", help="fund-flow monitoring across banks, end to end "
                                 "/ 跨行信贷资金流向监测演示")
    demo.add_argument("--banks", type=int, default=5)
    demo.add_argument("--loans", type=int, default=100_000, help="loans per bank (100000)")
    demo.add_argument("--out", type=Path, default=Path("out/supervision"))
    demo.add_argument("--epsilon", type=float, default=None,
                      help="differential-privacy budget (default: no noise)")
    demo.set_defaults(func=_demo)


def _datagen(args: argparse.Namespace) -> int:
    from meshmpc_supervision.datagen import write_banks

    for party, path in write_banks(args.out, args.banks, args.loans, args.seed).items():
        print(f"{party}: {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Generate the banks' data, run the fund-flow job as separate processes, summarise."""
    from meshmpc.jobs.artefacts import read_local, read_local_table
    from meshmpc.jobs.local import run_job_local
    from meshmpc_supervision.datagen import job_file, write_banks

    start = time.perf_counter()
    paths = write_banks(args.out / "data", args.banks, args.loans)
    params = {} if args.epsilon is None else {"epsilon": args.epsilon}
    job = job_file(args.out, paths, **params)
    results = run_job_local(job, args.out / "run")
    step = results["pboc"]["steps"]["fundflow"]
    folder = Path(results["pboc"]["out"]) / "fundflow"
    table = read_local_table(folder / "fundflow.parquet")  # sealed at rest: the party's key
    page = args.out / "fundflow_report.html"  # aggregates only, for the regulator's staff
    page.write_bytes(read_local(folder / "fundflow_report.html"))
    report = step["report"]
    print(f"fund-flow monitoring / 信贷资金流向监测: {args.banks} banks x {args.loans:,} loans, "
          f"{report['published']} of {report['cells']} cells published "
          f"({report['suppressed']} suppressed), {time.perf_counter() - start:.1f} s")
    worst = table.sort_by([("flagged_rate", "descending")]).slice(0, 3).to_pylist()
    for row in worst:
        print(f"  {row['region']} {row['institution_type']} {row['month']}: "
              f"{row['flagged']}/{row['loans']} flagged ({row['flagged_rate']:.1%})")
    print(f"  report: {page}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Entry point for ``meshmpc supervision ...``."""
    parser = subparsers.add_parser("supervision", help="supervision applications "
                                   "(meshmpc-supervision)")
    add_commands(parser.add_subparsers(dest="supervision_command", metavar="COMMAND"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc-supervision",
                                     description="Supervision applications on meshmpc.")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except MeshMPCError as exc:
        print(f"meshmpc-supervision: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
