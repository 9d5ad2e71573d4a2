"""``meshmpc pir``: anonymous query (keyword PIR) over the cluster's encrypted mesh.

Server (the partner holding the risk list) - a service that keeps running,
serves each client that connects (several at once) and reloads the list when
the file changes (--watch), until stopped with Ctrl-C or SIGTERM::

    meshmpc pir serve --config cluster.toml --party fin --db risklist.parquet \\
        --key credit_code --client bank --watch 5

Client (the bank)::

    meshmpc pir query --config cluster.toml --party bank --server fin \\
        --keys applicants.csv --output hits.csv

The server never learns which keys were asked nor whether they were found;
the client learns the records of its keys only. Only the server and the
client need to run. Keys are compared after the shared normalisation rule
(full-width to ASCII, trimmed; --casefold to ignore case): both sides must
use the same options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import time
from pathlib import Path
from typing import Any

from meshmpc.data.keynorm import KeyRule, add_key_rule_options, key_rule_from_args
from meshmpc.net.eventloop import run
from meshmpc.userinput import HelpFormatter, UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pir", help="anonymous query: keyword PIR against a partner's list",
        description=__doc__, formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="pir_command", metavar="ROLE")
    serve = sub.add_parser("serve", help="serve a risk list to clients until stopped",
                           formatter_class=HelpFormatter)
    _common(serve)
    serve.add_argument("--db", required=True,
                       help="risk list: CSV/Parquet file or database URL")
    serve.add_argument("--key", required=True, help="key column (e.g. credit_code)")
    serve.add_argument("--client", action="append",
                       help="a party allowed to query, repeatable (default: bank)")
    serve.add_argument("--record-bytes", type=int, help="declared record maximum (default: "
                       "longest record)")
    serve.add_argument("--membership", action="store_true", help="answer yes/no only")
    serve.add_argument("--watch", type=float, default=0.0, metavar="SECONDS",
                       help="reload --db when it changes, checked every SECONDS (0: never)")
    serve.add_argument("--sessions", type=int, default=None,
                       help="stop after this many client sessions (default: run until "
                       "stopped)")
    serve.set_defaults(func=_serve)
    query = sub.add_parser("query", help="look keys up at a server", formatter_class=HelpFormatter)
    _common(query)
    query.add_argument("--server", required=True, help="the party serving the list")
    query.add_argument("--keys", required=True, help="CSV/Parquet file of keys")
    query.add_argument("--key-column", help="column holding the keys (default: the only one)")
    query.add_argument("--output", type=Path, required=True, help="hits (.csv or .parquet)")
    query.set_defaults(func=_query)
    parser.set_defaults(func=lambda args: _usage(parser))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="cluster.toml")
    parser.add_argument("--party", required=True, help="this party's name in the cluster")
    parser.add_argument("--key-file", type=Path, help="identity key (default: from config)")
    parser.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                        help="client: wait this long for the server (default: the config's)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--encoding", help="text encoding of CSV files, e.g. gb18030 "
                        "(default: utf-8)")
    parser.add_argument("--delimiter", help="CSV delimiter (default: tab for .tsv, else ,)")
    add_key_rule_options(parser)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _identity(args: argparse.Namespace) -> tuple[Any, Any]:
    from meshmpc.net.config import load_config
    from meshmpc.net.keys import IdentityKey

    config = load_config(args.config)
    if args.connect_timeout is not None:
        config = dataclasses.replace(config, connect_timeout_s=args.connect_timeout)
    entry = config.party(args.party)
    key_file = args.key_file or entry.key_file or args.config.parent / f"{args.party}.key"
    return config, IdentityKey.load(args.party, key_file)


def _serve(args: argparse.Namespace) -> int:
    from meshmpc.pir.service import PirService, TextOptions

    config, identity = _identity(args)
    clients = args.client or ["bank"]
    for name in [*clients]:
        config.party(name)  # an unknown client is a config error, named now
    if args.party in clients:
        raise UserError(f"--client {args.party} is this party itself; name the querying party")
    rule = key_rule_from_args(args)
    text = TextOptions(args.encoding, args.delimiter)
    service = PirService(args.db, args.key, rule, args.record_bytes, args.membership,
                         args.quiet, text)
    database = service.build()  # a bad list fails now, before listening
    result = run(_serve_until_stopped(service, database, config, identity, clients, args))
    print(json.dumps(result, default=str))
    return 0


async def _serve_until_stopped(service: Any, database: Any, config: Any, identity: Any,
                               clients: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from meshmpc.net.launch import listen_address
    from meshmpc.pir.service import ServiceMesh
    from meshmpc.userinput import explain_os_error

    mesh = ServiceMesh(config, args.party, identity, clients)
    try:
        await mesh.start()
    except OSError as exc:
        advice = explain_os_error(exc, listen_address(config, args.party))
        if advice is None:
            raise
        raise UserError(f"party {args.party}: {advice}") from exc
    task = asyncio.ensure_future(service.run(mesh, args.sessions, args.watch, database))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return dict(await task)
    except asyncio.CancelledError:
        service.log("stopped")
        return {"stopped": True, "requests": dict(service.served)}
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await mesh.close()


def _query(args: argparse.Namespace) -> int:
    from meshmpc.pir.service import TextOptions, normalised_keys
    from meshmpc.progress import Progress

    config, identity = _identity(args)
    config.party(args.server)
    rule = key_rule_from_args(args)
    progress = Progress("pir query", not args.quiet)
    started = time.perf_counter()
    progress.stage(f"reading {args.keys}")
    keys = normalised_keys(args.keys, args.key_column, rule,
                           TextOptions(args.encoding, args.delimiter),
                           args.quiet)  # fail before connecting
    progress.stage(f"{len(keys):,} distinct keys to ask, read in "
                   f"{time.perf_counter() - started:.2f} s")
    result = run(_query_server(config, identity, args, rule, keys, progress))
    print(json.dumps(result, default=str))
    return 0


async def _query_server(config: Any, identity: Any, args: argparse.Namespace, rule: KeyRule,
                        keys: list[bytes], progress: Any) -> dict[str, Any]:
    from meshmpc.net import Context
    from meshmpc.pir.api import query_table, write_table
    from meshmpc.pir.service import ClientMesh, check_server_rule

    mesh = ClientMesh(config, args.party, identity, args.server, on_waiting=progress.stage)
    entry = config.party(args.server)
    progress.stage(f"connecting to {args.server} at {entry.host}:{entry.port}")
    try:
        await mesh.start()
        ctx = Context(mesh, config)
        check_server_rule(mesh.hello, args.server, rule)
        progress.stage(f"session with {args.server} open; asking {len(keys):,} keys")
        table = await query_table(ctx, args.server, keys, progress)
        await mesh.flush()
    finally:
        with contextlib.suppress(Exception):
            await mesh.close()
    write_table(table, args.output)
    found = sum(1 for f in table.column("found").to_pylist() if f)
    progress.stage(f"{found:,} of {len(keys):,} found; wrote {args.output}")
    return {"keys": len(keys), "found": found, "output": str(args.output)}
