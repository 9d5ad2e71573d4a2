"""``meshmpc job run`` and ``meshmpc job validate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from meshmpc.jobs.local import run_job_local, run_job_node
from meshmpc.jobs.registry import ComponentRegistry
from meshmpc.jobs.spec import load_job


def register(subparsers: argparse._SubParsersAction) -> None:
    """Entry point of the ``meshmpc.commands`` group."""
    parser = subparsers.add_parser("job", help="run or check a job file (a DAG of steps)")
    sub = parser.add_subparsers(dest="job_command", metavar="COMMAND", required=True)
    run = sub.add_parser(
        "run", help="run a job: every party locally, or this node's party with --party",
        description="Without --party, every party runs as a local process over the encrypted "
        "mesh on loopback (generated keys). With --party and --config, this node runs its "
        "party's side; every node runs the same job file.",
    )
    run.add_argument("job", type=Path, help="job file (YAML)")
    run.add_argument("--party", help="this node's party id (needs --config)")
    run.add_argument("--config", type=Path, help="cluster.toml (with --party)")
    run.add_argument("--key", type=Path, help="private key file (default: from the config)")
    run.add_argument("--out", type=Path, default=Path("out"), help="artefact folder (out/)")
    run.add_argument("--resume", action="store_true",
                     help="skip steps whose artefacts are complete and unchanged")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--json", action="store_true", help="print the summaries as JSON")
    run.add_argument("--timeout", type=float, default=1800.0, help="local runs: seconds")
    run.set_defaults(func=_run)
    check = sub.add_parser("validate", help="check a job file without running it")
    check.add_argument("job", type=Path, help="job file (YAML)")
    check.set_defaults(func=_validate)


def _run(args: argparse.Namespace) -> int:
    if (args.party is None) != (args.config is None):
        print("meshmpc job run: --party and --config go together", file=sys.stderr)
        return 2
    quiet = args.quiet or not sys.stderr.isatty()  # bars only on a terminal
    if args.party is not None:
        result = run_job_node(args.job, args.party, args.config, args.out, key=args.key,
                              resume=args.resume, quiet=quiet)
        results = {args.party: result}
    else:
        results = run_job_local(args.job, args.out, resume=args.resume, quiet=quiet,
                                timeout=args.timeout)
    if args.json:
        print(json.dumps(results, indent=1, default=str))
    else:
        for party, summary in results.items():
            _print_summary(party, summary)
    return 0


def _print_summary(party: str, summary: dict[str, Any]) -> None:
    steps = ", ".join(f"{s} {v['status']}" + (f" {v['wall_s']:.2f}s" if v.get("wall_s") else "")
                      for s, v in summary["steps"].items())
    print(f"{party:<8} {steps}; sent {summary['bytes_sent'] / 1e6:.1f} MB -> {summary['out']}")


def _validate(args: argparse.Namespace) -> int:
    spec = load_job(args.job, ComponentRegistry().names())
    print(f"{args.job}: job {spec.name!r} is valid: {len(spec.parties)} parties, "
          f"{len(spec.steps)} steps")
    for step in spec.steps:
        after = f" after {', '.join(step.after)}" if step.after else ""
        print(f"  {step.id:<12} {step.component:<16} parties {','.join(step.parties)}{after}")
    return 0
