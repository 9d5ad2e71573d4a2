"""``meshmpc pir``: anonymous query (keyword PIR) over the cluster's encrypted mesh.

Server (the partner holding the risk list) - a service that keeps running,
serves each client that connects (several at once) and reloads the list when
the file changes (--watch), until stopped with Ctrl-C or SIGTERM::

    meshmpc pir serve --config cluster.toml --party fin --db risklist.parquet \\
        --key credit_code --client bank --watch 5

Client (the bank)::

    meshmpc pir query --config cluster.toml --party bank --server fin \\
        --keys applicants.csv --output hits.csv

Under the data owner's grants (its node caps the lookups per day and in total
and checks purpose and consent before each batch is answered)::

    meshmpc pir serve ... --node http://127.0.0.1:8600 --node-token-file fin.token \\
        --dataset risklist
    meshmpc pir query ... --purpose credit_approval --consent-refs consents.txt

``--consent-refs``: one consent reference per line (or a CSV/Parquet column
``consent_ref``), either one per row of --keys (each batch then carries the
count and Merkle root of its own keys' references) or a set covering every key
(sent whole with each batch). The server's node sees only counts and roots.

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
    serve.add_argument("--node", metavar="URL",
                       help="admit every batch through this node's grant caps, purpose and "
                       "consent checks (its API, e.g. http://127.0.0.1:8600)")
    serve.add_argument("--node-token-file", type=Path, metavar="FILE",
                       help="an analyst's API token of --node (chmod 600)")
    serve.add_argument("--dataset", metavar="NAME",
                       help="the node's dataset this list is (the grants name it)")
    serve.set_defaults(func=_serve)
    query = sub.add_parser("query", help="look keys up at a server", formatter_class=HelpFormatter)
    _common(query)
    query.add_argument("--server", required=True, help="the party serving the list")
    query.add_argument("--keys", required=True, help="CSV/Parquet file of keys")
    query.add_argument("--key-column", help="column holding the keys (default: the only one)")
    query.add_argument("--output", type=Path, required=True, help="hits (.csv or .parquet)")
    query.add_argument("--purpose", help="why the keys are looked up, e.g. credit_approval "
                       "(a server under its node's grants refuses lookups without one)")
    query.add_argument("--consent-refs", type=Path, metavar="FILE",
                       help="consent references: one per key row, or a set covering every key")
    query.add_argument("--batch", type=int, default=None, metavar="KEYS",
                       help="keys per batch (each is admitted whole; default 1024)")
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
                         args.quiet, text, admit=_node_gate(args))
    database = service.build()  # a bad list fails now, before listening
    result = run(_serve_until_stopped(service, database, config, identity, clients, args))
    print(json.dumps(result, default=str))
    return 0


def _node_gate(args: argparse.Namespace) -> Any:
    """The node's lookup gate of ``pir serve --node`` (checked now: the node answers and
    the token is an analyst's), or None without --node."""
    from meshmpc.pir.admit_http import HttpLookupGate, read_token_file

    given = {"--node": args.node, "--node-token-file": args.node_token_file,
             "--dataset": args.dataset}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise UserError(f"pir serve: {', '.join(missing)} missing; --node, --node-token-file "
                        "and --dataset go together")
    gate = HttpLookupGate(args.node, read_token_file(args.node_token_file), args.dataset)
    gate.check()
    return gate


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
    from meshmpc.pir.service import TextOptions, keys_with_rows
    from meshmpc.progress import Progress

    config, identity = _identity(args)
    config.party(args.server)
    rule = key_rule_from_args(args)
    progress = Progress("pir query", not args.quiet)
    started = time.perf_counter()
    progress.stage(f"reading {args.keys}")
    keys, rows, key_rows = keys_with_rows(args.keys, args.key_column, rule,
                                          TextOptions(args.encoding, args.delimiter),
                                          args.quiet)  # fail before connecting
    consent = _batch_consent(args, keys, rows, key_rows)  # likewise
    progress.stage(f"{len(keys):,} distinct keys to ask, read in "
                   f"{time.perf_counter() - started:.2f} s")
    result = run(_query_server(config, identity, args, rule, keys, progress, consent))
    print(json.dumps(result, default=str))
    return 0


def _batch_consent(args: argparse.Namespace, keys: list[bytes], rows: list[int],
                   key_rows: int) -> Any:
    """The per-batch purpose and consent fields (None when neither option is given)."""
    from meshmpc.pir.consent_refs import BatchConsent, read_consent_refs

    if args.purpose is None and args.consent_refs is None:
        return None
    if args.purpose is None or args.consent_refs is None:
        raise UserError("pir query: --purpose and --consent-refs go together (the server's "
                        "node needs both for every batch)")
    return BatchConsent(args.purpose, read_consent_refs(args.consent_refs), keys, rows,
                        key_rows, f"--consent-refs {args.consent_refs}")


def _check_admission(hello: Any, server: str, consent: Any) -> None:
    """A server under its node's grants tells so first: stop before asking anything."""
    admission = hello.get("admission") if isinstance(hello, dict) else None
    if admission and consent is None:
        where = admission.get("dataset") if isinstance(admission, dict) else None
        raise UserError(f"server {server} answers lookups on {where!r} only under its node's "
                        "grants: give --purpose and --consent-refs (nothing was asked)")


async def _query_server(config: Any, identity: Any, args: argparse.Namespace, rule: KeyRule,
                        keys: list[bytes], progress: Any, consent: Any) -> dict[str, Any]:
    from meshmpc.net import Context
    from meshmpc.pir.api import hits_table, write_table
    from meshmpc.pir.client import PirClient
    from meshmpc.pir.errors import LookupRefused
    from meshmpc.pir.service import ClientMesh, check_server_rule

    mesh = ClientMesh(config, args.party, identity, args.server, on_waiting=progress.stage)
    entry = config.party(args.server)
    progress.stage(f"connecting to {args.server} at {entry.host}:{entry.port}")
    try:
        await mesh.start()
        check_server_rule(mesh.hello, args.server, rule)
        _check_admission(mesh.hello, args.server, consent)
        progress.stage(f"session with {args.server} open; asking {len(keys):,} keys")
        client = PirClient(Context(mesh, config), args.server, progress)
        client.batch_fields = consent
        client.chunk = args.batch or client.chunk
        try:
            table = hits_table(await client.query(keys))
        except LookupRefused as exc:
            done = consent.answered_before_last() if consent is not None else 0
            raise UserError(f"{exc}; {done:,} of {len(keys):,} keys had been answered, "
                            f"nothing was written to {args.output}") from None
        finally:
            with contextlib.suppress(Exception):
                await client.close()
        await mesh.flush()
    finally:
        with contextlib.suppress(Exception):
            await mesh.close()
    write_table(table, args.output)
    found = sum(1 for f in table.column("found").to_pylist() if f)
    progress.stage(f"{found:,} of {len(keys):,} found; wrote {args.output}")
    return {"keys": len(keys), "found": found, "output": str(args.output)}
