"""``meshmpc-supervision`` (also ``meshmpc supervision``): reference data and the demo."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    demo.add_argument("--only", choices=("fundflow", "related", "green"), default=None,
                      help="run one application (default: all three)")
    demo.set_defaults(func=_demo)


def _datagen(args: argparse.Namespace) -> int:
    from meshmpc_supervision.datagen import write_banks

    for party, path in write_banks(args.out, args.banks, args.loans, args.seed).items():
        print(f"{party}: {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Each application on its reference data, as separate processes, summarised."""
    demos = {"fundflow": _demo_fundflow, "related": _demo_related, "green": _demo_green}
    for name, run in demos.items():
        if args.only in (None, name):
            run(args)
    return 0


def _run_for_regulator(job: Path, out: Path, step: str, table: str, page: str
                       ) -> tuple[Any, Path, dict[str, Any]]:
    """Run ``job`` as separate processes; (the regulator's table, its report copied to
    ``out`` for the regulator's staff: aggregates only, the step's summary)."""
    from meshmpc.jobs.artefacts import read_local, read_local_table
    from meshmpc.jobs.local import run_job_local

    results = run_job_local(job, out / "run")
    folder = Path(results["pboc"]["out"]) / step
    rows = read_local_table(folder / table)  # sealed at rest: the party's key
    copy = out / page
    copy.write_bytes(read_local(folder / page))
    return rows, copy, results["pboc"]["steps"][step]


def _demo_fundflow(args: argparse.Namespace) -> None:
    """Generate the banks' loans, run the fund-flow job, summarise."""
    from meshmpc_supervision.datagen import job_file, write_banks

    start = time.perf_counter()
    paths = write_banks(args.out / "data", args.banks, args.loans)
    params = {} if args.epsilon is None else {"epsilon": args.epsilon}
    table, page, step = _run_for_regulator(job_file(args.out, paths, **params), args.out,
                                           "fundflow", "fundflow.parquet",
                                           "fundflow_report.html")
    report = step["report"]
    print(f"fund-flow monitoring / 信贷资金流向监测: {args.banks} banks x {args.loans:,} loans, "
          f"{report['published']} of {report['cells']} cells published "
          f"({report['suppressed']} suppressed), {time.perf_counter() - start:.1f} s")
    worst = table.sort_by([("flagged_rate", "descending")]).slice(0, 3).to_pylist()
    for row in worst:
        print(f"  {row['region']} {row['institution_type']} {row['month']}: "
              f"{row['flagged']}/{row['loans']} flagged ({row['flagged_rate']:.1%})")
    print(f"  report: {page}")


def _demo_related(args: argparse.Namespace) -> None:
    """Three banks' borrowers against a public registry graph (honest majority)."""
    from meshmpc_supervision.datagen import related_job_file, write_related

    start = time.perf_counter()
    out = args.out / "related"
    registry, paths = write_related(out / "data", 3, 20_000, 200_000)
    job = related_job_file(out, registry, paths, security="honest-majority")
    table, page, _ = _run_for_regulator(job, out, "related", "related_groups.parquet",
                                        "related_report.html")
    print(f"related-party exposure / 关联企业跨行授信: 3 banks x 20,000 borrowers, "
          f"200,000 registry links: {table.num_rows:,} groups borrow at several banks, "
          f"{time.perf_counter() - start:.1f} s")
    for row in table.sort_by([("exposure_fen", "descending")]).slice(0, 3).to_pylist():
        print(f"  group {row['group']}: {row['members']} firms, {row['banks']} banks, "
              f"{row['exposure_fen'] / 1e6:,.1f} x 10k CNY")
    print(f"  report: {page}")


def _demo_green(args: argparse.Namespace) -> None:
    """Five banks' green portfolios with the government's carbon data (no dealer)."""
    from meshmpc_supervision.datagen import green_job_file, write_green

    start = time.perf_counter()
    out = args.out / "green"
    firms, gov, paths = write_green(out / "data", 5, 50_000, 20_000)
    job = green_job_file(out, firms, gov, paths, publish="points")
    table, page, _ = _run_for_regulator(job, out, "green", "green_scores.parquet",
                                        "green_report.html")
    print(f"green-finance evaluation / 绿色金融联合评价: 5 banks, 50,000 registered firms, "
          f"{time.perf_counter() - start:.1f} s")
    for row in table.to_pylist():
        print(f"  #{row['rank']} {row['institution']}: {row['score']} points")
    print(f"  report: {page}")


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
