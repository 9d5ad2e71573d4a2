"""``meshmpc psi``: one party's side of a PSI job over the cluster's encrypted mesh.

Two parties::

    meshmpc psi --config cluster.toml --party bank --peer gov --input bank.csv \\
        --key credit_code --protocol kkrt --output aligned.csv

Several parties (ECDH-based multi-party PSI; only the receiver learns the
result)::

    meshmpc psi --config cluster.toml --party gov --peer bank --peer fin --peer telco \\
        --input gov.csv --key credit_code --protocol ecdh-mp --receiver bank

Every party runs the same command with its own --party, --peer, --input and
--output; all other options must match, or the run stops at once with an error
naming the differing option.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from meshmpc.psi.protocols import PROTOCOLS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "psi", help="private set intersection (align rows with other parties)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="cluster.toml")
    parser.add_argument("--party", required=True, help="this party's name in the cluster")
    parser.add_argument("--key-file", type=Path, help="identity key (default: from config)")
    parser.add_argument("--peer", action="append", required=True, help="a peer (repeatable)")
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet input")
    parser.add_argument("--key", action="append", required=True,
                        help="key column; repeat for a composite key")
    parser.add_argument("--payload", action="append", help="output column (default: all)")
    parser.add_argument("--output", type=Path, help="aligned rows (.csv or .parquet)")
    parser.add_argument("--protocol", default="rr22", choices=sorted(PROTOCOLS))
    parser.add_argument("--receiver", help="party that learns the result (default: first)")
    parser.add_argument("--reveal", default="all", choices=["receiver", "all", "cardinality"])
    parser.add_argument("--mode", default="inner", choices=["inner", "left", "difference"])
    parser.add_argument("--no-trim", action="store_true", help="keep key whitespace")
    parser.add_argument("--casefold", action="store_true", help="compare keys lower-cased")
    parser.add_argument("--on-empty", default="drop", choices=["drop", "error"])
    parser.add_argument("--on-duplicate", default="first", choices=["first", "error"])
    parser.add_argument("--workers", type=int, help="ECDH worker processes (default: cores)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=sys.stderr.isatty(), help="progress on stderr")
    parser.add_argument("--bucket-rows", type=int,
                        help="rows per bucket above which inputs are bucketed (default 2M)")
    parser.add_argument("--cache-dir", type=Path,
                        help="unbalanced PSI cache (default: .meshmpc-psi-cache by the input)")
    parser.add_argument("--schema", type=Path,
                        help="check the input against this schema first "
                        "(default: <name>.schema.toml beside the input, when present)")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip the schema check (every party must agree)")
    parser.set_defaults(func=run)


def options(args: argparse.Namespace) -> dict[str, Any]:
    """Job options (see :func:`meshmpc.psi.job.job_from_options`) from the arguments."""
    return {
        "input": str(args.input), "output": str(args.output) if args.output else None,
        "keys": args.key, "peers": args.peer, "receiver": args.receiver,
        "payload": args.payload, "protocol": args.protocol, "reveal": args.reveal,
        "mode": args.mode, "trim": not args.no_trim, "casefold": args.casefold,
        "on_empty": args.on_empty, "on_duplicate": args.on_duplicate, "workers": args.workers,
        "cache_dir": str(args.cache_dir) if args.cache_dir else None,
        "progress": args.progress, "bucket_rows": args.bucket_rows,
        "schema": str(args.schema) if args.schema else None, "validate": not args.no_validate,
    }


def run(args: argparse.Namespace) -> int:
    """Connect to the mesh, run the job, print its summary as JSON on stdout."""
    from meshmpc.net.eventloop import run as run_loop
    from meshmpc.net.launch import run_party

    summary = run_loop(run_party(args.config, args.party, args.key_file,
                                 "meshmpc.psi.job:run_job_options", options(args)))
    json.dump(summary, sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0
