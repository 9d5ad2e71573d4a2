"""``meshmpc pir``: anonymous query (keyword PIR) over the cluster's encrypted mesh.

Server (the partner holding the risk list)::

    meshmpc pir serve --config cluster.toml --party fin --db risklist.parquet \\
        --key credit_code --client bank

Client (the bank)::

    meshmpc pir query --config cluster.toml --party bank --server fin \\
        --keys applicants.csv --output hits.csv

The server never learns which keys were asked nor whether they were found;
the client learns the records of its keys only. Every party in the config's
mesh must be running (use a config with just these two parties otherwise).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from meshmpc.net.eventloop import run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pir", help="anonymous query: keyword PIR against a partner's list",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="pir_command", metavar="ROLE")
    serve = sub.add_parser("serve", help="serve a risk list to one client")
    _common(serve)
    serve.add_argument("--db", type=Path, required=True, help="CSV or Parquet risk list")
    serve.add_argument("--key", required=True, help="key column (e.g. credit_code)")
    serve.add_argument("--client", default="bank", help="the querying party (default: bank)")
    serve.add_argument("--record-bytes", type=int, help="declared record maximum (default: "
                       "longest record)")
    serve.add_argument("--membership", action="store_true", help="answer yes/no only")
    serve.add_argument("--watch", type=float, default=0.0, metavar="SECONDS",
                       help="rebuild and swap when --db changes (checked every SECONDS)")
    serve.set_defaults(func=_serve)
    query = sub.add_parser("query", help="look keys up at a server")
    _common(query)
    query.add_argument("--server", required=True, help="the party serving the list")
    query.add_argument("--keys", type=Path, required=True, help="CSV or Parquet of keys")
    query.add_argument("--key-column", help="column holding the keys (default: the only one)")
    query.add_argument("--output", type=Path, required=True, help="hits (.csv or .parquet)")
    query.set_defaults(func=_query)
    parser.set_defaults(func=lambda args: _usage(parser))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="cluster.toml")
    parser.add_argument("--party", required=True, help="this party's name in the cluster")
    parser.add_argument("--key-file", type=Path, help="identity key (default: from config)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _run(args: argparse.Namespace, target: str, kwargs: dict[str, Any]) -> int:
    from meshmpc.net.launch import run_party

    result = run(run_party(args.config, args.party, args.key_file, target, kwargs))
    print(json.dumps({k: v for k, v in result.items() if k != "peak_rss_mb"}, default=str))
    return 0


def _serve(args: argparse.Namespace) -> int:
    return _run(args, "meshmpc.pir.api:serve_job", {
        "db": str(args.db), "key": args.key, "client": args.client,
        "record_bytes": args.record_bytes, "membership": args.membership,
        "watch_s": args.watch,
    })


def _query(args: argparse.Namespace) -> int:
    from meshmpc.pir.api import read_keys

    read_keys(args.keys, args.key_column)  # fail on a bad keys file before connecting
    return _run(args, "meshmpc.pir.api:query_job", {
        "server": args.server, "keys": str(args.keys), "output": str(args.output),
        "key_column": args.key_column,
    })
