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
naming the differing option. Inputs: CSV/TSV, Parquet, or a database URL such
as sqlite:///bank.db?table=apps (the same loader as ``meshmpc data``).

Outputs appear only when every party has written its own (two-phase commit).
A party that lost its link between the two phases keeps its output as
<output>.in-doubt; settle it with the peers later:

    meshmpc psi reconcile --config cluster.toml --party bank --peer gov
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from meshmpc.data.keynorm import add_key_rule_options, key_rule_from_args
from meshmpc.psi.protocols import PROTOCOLS
from meshmpc.userinput import HelpFormatter, UserError

REVEAL_HELP = (
    "who learns the intersection (default: all): 'all' = every party gets its matched rows; "
    "'receiver' = only --receiver gets rows, the others learn nothing but the set sizes; "
    "'cardinality' = only the receiver learns the intersection size, nobody gets rows"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "psi", help="private set intersection (align rows with other parties)",
        description=__doc__, formatter_class=HelpFormatter,
    )
    parser.add_argument("action", nargs="?", default="run", choices=["run", "reconcile"],
                        help="run a PSI job, or settle outputs left in doubt")
    parser.add_argument("--config", type=Path, required=True, help="cluster.toml")
    parser.add_argument("--party", required=True, help="this party's name in the cluster")
    parser.add_argument("--key-file", type=Path, help="identity key (default: from config)")
    parser.add_argument("--peer", action="append", required=True, help="a peer (repeatable)")
    parser.add_argument("--input", help="CSV/TSV or Parquet file, or a database URL "
                        "(sqlite:///file.db?table=NAME)")
    parser.add_argument("--key", action="append",
                        help="key column; repeat for a composite key (required)")
    parser.add_argument("--payload", action="append",
                        help="output column, repeatable (default: all columns)")
    parser.add_argument("--output", type=Path,
                        help="aligned rows (.csv or .parquet); only for a party that learns "
                        "rows (see --reveal)")
    parser.add_argument("--protocol", default="rr22", choices=sorted(PROTOCOLS),
                        help="PSI protocol (see protocols/psi-*.md)")
    parser.add_argument("--receiver", help="party that learns the result with --reveal "
                        "receiver or cardinality (default: the first party in the config)")
    parser.add_argument("--reveal", default="all", choices=["receiver", "all", "cardinality"],
                        help=REVEAL_HELP)
    parser.add_argument("--mode", default="inner", choices=["inner", "left", "difference"],
                        help="inner = matched rows; left = matched rows, then unmatched ones "
                        "with psi_matched=false; difference = unmatched rows only")
    add_key_rule_options(parser)
    parser.add_argument("--on-empty", default="drop", choices=["drop", "error"],
                        help="rows with an empty key: drop them (with a warning) or stop")
    parser.add_argument("--on-duplicate", default="first", choices=["first", "error"],
                        help="repeated keys: keep the first row (with a warning) or stop")
    parser.add_argument("--row-number-column", metavar="NAME",
                        help="add each output row's 1-based input row number as column NAME")
    parser.add_argument("--encoding", help="text encoding of a CSV input, e.g. gb18030 "
                        "(default: utf-8, or the schema's)")
    parser.add_argument("--delimiter", help="CSV delimiter (default: tab for .tsv, else ,)")
    parser.add_argument("--workers", type=int, help="ECDH worker processes (default: cores)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=sys.stderr.isatty(),
                        help="step lines with rates on stderr (default: on at a terminal)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress and no warnings on stderr (errors still shown)")
    parser.add_argument("--bucket-rows", type=int,
                        help="rows per bucket above which inputs are bucketed (default 2M)")
    parser.add_argument("--cache-dir", type=Path,
                        help="unbalanced PSI cache (default: .meshmpc-psi-cache by the input)")
    parser.add_argument("--schema", type=Path,
                        help="check the input against this schema first "
                        "(default: <name>.schema.toml beside the input, when present)")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip the schema check (every party must agree)")
    parser.add_argument("--state-dir", type=Path,
                        help="commit journal (default: $MESHMPC_STATE_DIR or "
                        "~/.local/state/meshmpc/psi)")
    parser.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                        help="wait this long for peers (default: the config's)")
    parser.set_defaults(func=run)


def options(args: argparse.Namespace) -> dict[str, Any]:
    """Job options (see :func:`meshmpc.psi.job.job_from_options`) from the arguments."""
    rule = key_rule_from_args(args)
    return {
        "input": args.input, "output": str(args.output) if args.output else None,
        "keys": args.key, "peers": args.peer, "receiver": args.receiver,
        "payload": args.payload, "protocol": args.protocol, "reveal": args.reveal,
        "mode": args.mode, "trim": rule.trim, "casefold": rule.casefold,
        "halfwidth": rule.halfwidth,
        "on_empty": args.on_empty, "on_duplicate": args.on_duplicate, "workers": args.workers,
        "cache_dir": str(args.cache_dir) if args.cache_dir else None,
        "progress": args.progress and not args.quiet, "bucket_rows": args.bucket_rows,
        "schema": str(args.schema) if args.schema else None, "validate": not args.no_validate,
        "encoding": args.encoding, "delimiter": args.delimiter,
        "row_number_column": args.row_number_column, "quiet": args.quiet,
        "state_dir": str(args.state_dir) if args.state_dir else None,
    }


def check_parties(args: argparse.Namespace) -> None:
    """Unknown --party/--peer/--receiver, and --output on a party that learns no rows.

    All are mistakes the user can see before any peer is contacted.
    """
    from meshmpc.net.config import load_config

    order = load_config(args.config).party_ids
    for option, name in [("--party", args.party), *(("--peer", p) for p in args.peer)]:
        if name not in order:
            raise UserError(f"{option} {name!r} is not a party of {args.config} "
                            f"(parties: {', '.join(order)})")
    if args.party in args.peer:
        raise UserError(f"--peer {args.party} is this party itself; name the other parties")
    parties = [p for p in order if p == args.party or p in args.peer]
    if args.receiver is not None and args.receiver not in parties:
        raise UserError(f"--receiver {args.receiver!r} is not one of this job's parties "
                        f"({', '.join(parties)})")
    if args.output is None:
        return
    if args.reveal == "cardinality":
        raise UserError("--output given, but with --reveal cardinality no party gets rows; "
                        "drop --output, or use --reveal all / receiver")
    if args.reveal == "receiver":
        receiver = args.receiver or parties[0]
        if receiver != args.party:
            raise UserError(f"--output given, but with --reveal receiver only {receiver} "
                            f"learns rows and party {args.party} learns nothing; drop "
                            f"--output on {args.party}")


def run(args: argparse.Namespace) -> int:
    """Connect to the mesh, run the job (or reconcile), print its summary as JSON."""
    from meshmpc.net.eventloop import run as run_loop
    from meshmpc.net.launch import run_party

    if args.action == "reconcile":
        target = "meshmpc.psi.commit:reconcile_job"
        kwargs: dict[str, Any] = {
            "peers": args.peer, "state_dir_path": str(args.state_dir) if args.state_dir
            else None}
    else:
        if not args.input or not args.key:
            raise UserError("psi needs --input and --key (e.g. --input bank.csv --key "
                            "credit_code)")
        check_parties(args)
        target, kwargs = "meshmpc.psi.job:run_job_options", options(args)
        _check_input_now(kwargs)
    summary = run_loop(run_party(args.config, args.party, args.key_file, target, kwargs,
                                 connect_timeout_s=args.connect_timeout,
                                 parties=[args.party, *args.peer], quiet=args.quiet))
    json.dump(summary, sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0


def _check_input_now(kwargs: dict[str, Any]) -> None:
    """A missing input or key column is reported before waiting for the peers."""
    from meshmpc.psi.io import BatchSource, ReadOptions

    columns = None if kwargs["payload"] is None else [*kwargs["keys"], *kwargs["payload"]]
    BatchSource(kwargs["input"], kwargs["keys"], columns,
                options=ReadOptions(kwargs["encoding"], kwargs["delimiter"]))
