"""``meshmpc credit monitor`` and ``meshmpc credit warn``: the in-loan and post-loan jobs.

Both run the packaged job file with every party as a local process on
loopback (``--data`` holds the parties' files as the generator writes them:
``<party>.monthly.parquet``, ``<party>.risklist.parquet``); on real nodes run
the same job files with ``meshmpc job run FILE --party P --config cluster.toml``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from meshmpc.jobs.local import run_job_local
from meshmpc.jobs.spec import read_yaml

JOBS = Path(__file__).with_name("jobs")
PARTIES = ("bank", "gov", "fin", "telco")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``monitor`` and ``warn``."""
    for name, helptext, func in (
            ("monitor", "in-loan monitoring of the loan book (credit.inloan)", monitor),
            ("warn", "post-loan early warning and collection list (credit.postloan)", warn)):
        parser = subparsers.add_parser(name, help=helptext)
        parser.add_argument("--data", type=Path, required=True,
                            help="folder with the parties' files (the generator's layout)")
        parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
        parser.set_defaults(func=func)


def _run(job: str, args: argparse.Namespace) -> dict[str, Any]:
    raw = read_yaml(JOBS / job)
    base = args.data.resolve().parent
    prefix = args.data.resolve().name
    for spec in raw["parties"].values():
        for field in ("data", "monthly", "risklist"):
            if field in spec:
                spec[field] = str(base / prefix / Path(spec[field]).relative_to("data"))
    quiet = args.quiet or not sys.stderr.isatty()
    results = run_job_local(raw, args.out, base_dir=base, quiet=quiet)
    return dict(results["bank"]["steps"])


def monitor(args: argparse.Namespace) -> int:
    """Run the in-loan job and print the bank's summary."""
    report = _run("inloan.yaml", args)["monitor"]["report"]
    print(json.dumps({k: report[k] for k in ("loans", "months", "unscored", "score_psi")},
                     default=str))
    print(f"alerts and decisions: {args.out / 'inloan' / 'bank' / 'monitor'}")
    return 0


def warn(args: argparse.Namespace) -> int:
    """Build every party's observation table, run the post-loan job, print the summary."""
    from meshmpc_credit.postloan.observation import write_observations

    for party in PARTIES:
        write_observations(party, args.data / f"{party}.monthly.parquet",
                           args.data / "postloan" / f"{party}.parquet")
    steps = _run("postloan.yaml", args)
    report = steps["warn"]["report"]
    print(json.dumps({"auc": steps["eval"]["report"]["auc"], "watch": report["watch"],
                      "collection": report["collection"]}))
    print(f"watch list and collection list: {args.out / 'postloan' / 'bank' / 'warn'}")
    return 0
