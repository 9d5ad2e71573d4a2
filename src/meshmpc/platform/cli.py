"""``meshmpc node`` (init, serve, status, user) and ``meshmpc audit`` (verify, anchors).

``meshmpc node init --party bank --dir node/`` creates the node (keys, config,
database, first administrator); ``meshmpc node serve --dir node/`` runs its
HTTP API; ``meshmpc node status --dir node/`` prints its health.

``meshmpc audit verify --db sqlite:///node/node.db --party bank --public-key KEY``
checks the chain and the node's signed checkpoints; each ``--anchors FILE``
(written on a peer by ``meshmpc audit anchors --peer bank``) adds the heads that
peer holds, which a node cannot re-sign after the fact. Exit code 0 when the
log verifies, 1 when a problem is found (each one printed), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from meshmpc.errors import ConfigError
from meshmpc.net.keys import public_key_from_b64
from meshmpc.platform.audit import AuditError, Checkpoint, verify


def register_node(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("node", help="a party's node: init, serve, status, user",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    init = commands.add_parser("init", help="create a node directory (keys, config, database)")
    init.add_argument("--party", required=True, help="this node's party id, e.g. bank")
    init.add_argument("--dir", required=True, type=Path, help="node directory to create")
    init.add_argument("--admin", default="admin", help="first administrator account (admin)")
    init.add_argument("--http-listen", default="127.0.0.1:8700",
                      help="address:port of the HTTP API (default 127.0.0.1:8700)")
    init.add_argument("--db", default="", help="database URL (default: SQLite node/node.db; "
                      "postgresql://user@host/db for PostgreSQL)")
    init.add_argument("--pkcs11", default=None, metavar="URI",
                      help="keep the node's identity key in a PKCS#11 token (created there; "
                      "see `meshmpc keygen --help`)")
    init.set_defaults(func=run_init)
    serve = commands.add_parser("serve", help="run the node's HTTP API until stopped")
    serve.add_argument("--dir", required=True, type=Path, help="node directory")
    serve.set_defaults(func=run_serve)
    status = commands.add_parser("status", help="ask a running node for its health")
    status.add_argument("--dir", required=True, type=Path, help="node directory")
    status.set_defaults(func=run_status)
    purge = commands.add_parser("purge", help="delete job artefacts whose retention has ended")
    purge.add_argument("--dir", required=True, type=Path, help="node directory")
    purge.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    purge.set_defaults(func=run_purge)
    user = commands.add_parser("user", help="add an account (run on the node's machine)")
    user.add_argument("--dir", required=True, type=Path, help="node directory")
    user.add_argument("--name", required=True, help="account name")
    user.add_argument("--roles", required=True,
                      help="comma-separated: admin, security, auditor, analyst, approver, "
                           "strategy_editor (admin/security/auditor never together)")
    user.set_defaults(func=run_user)


def _password(prompt: str) -> str:
    from_env = os.environ.get("MESHMPC_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise ConfigError("<stdin>", "password", "set MESHMPC_PASSWORD or run interactively")
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise ConfigError("<stdin>", "password", "the two passwords differ")
    return first


def run_init(args: argparse.Namespace) -> int:
    from meshmpc.platform.node import init_node

    password = _password(f"password for {args.admin}: ")
    config, uri = init_node(args.dir, args.party, args.admin, password,
                            http_listen=args.http_listen, db=args.db, pkcs11=args.pkcs11)
    pub = (config.directory / "keys" / f"{config.party}.pub").read_text().strip()
    print(f"node {config.party} created in {config.directory}")
    print(f"  database: {config.db_url}")
    print(f"  public key (give it to your peers): {pub}")
    if uri:
        print(f"  {args.admin}: enrol this TOTP secret in an authenticator app now "
              f"(shown once): {uri}")
    print(f"  start it with: meshmpc node serve --dir {config.directory}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from meshmpc.platform.api import create_app
    from meshmpc.platform.node import Node

    node = Node.open(args.dir)
    host, _, port = node.config.http_listen.rpartition(":")
    node.audit.append("node.start", "system", {"http_listen": node.config.http_listen})
    app = create_app(node)
    # Start-up objects (modules, the app, SQLAlchemy's caches) never die: keep them out of
    # the collector so a full collection under load walks only what requests allocate.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, host=host or "127.0.0.1", port=int(port), log_level="info",
                            access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as exc:
        raise ConfigError(args.dir / "node.toml", "http_listen",
                          f"cannot listen on {node.config.http_listen}: {exc.strerror}") from exc
    node.audit.append("node.stop", "system", {})
    node.audit.checkpoint()
    return 0


def run_status(args: argparse.Namespace) -> int:
    from meshmpc.platform.node import NodeConfig

    config = NodeConfig.load(args.dir)
    url = f"http://{config.http_listen}/api/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (own node)
            health = json.loads(response.read())
    except (urllib.error.URLError, OSError) as exc:
        print(f"node {config.party}: not answering at {url}: {exc}")
        return 1
    print(f"node {health['party']}: {health['status']}, version {health['version']}, "
          f"{health['audit_entries']} audit entries")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from meshmpc.platform.node import Node
    from meshmpc.platform.retention import purge

    node = Node.open(args.dir)
    items = purge(node, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for item in items:
        print(f"{verb} job {item.job}: {item.path} ({item.bytes:,} bytes): {item.reason}")
    print(f"{node.party}: {verb} {len(items)} job(s), "
          f"{sum(i.bytes for i in items):,} bytes")
    return 0


def run_user(args: argparse.Namespace) -> int:
    from meshmpc.platform.node import Node

    node = Node.open(args.dir)
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    uri = node.accounts.create_user(args.name, _password(f"password for {args.name}: "), roles)
    node.audit.append("user.create", "local-operator", {"user": args.name, "roles": roles})
    print(f"user {args.name} created with roles {', '.join(roles)}")
    if uri:
        print(f"  enrol this TOTP secret now (shown once): {uri}")
    return 0


def register_audit(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="verify an audit log or export peers' anchors",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    check = commands.add_parser("verify", help="check the hash chain, checkpoints and anchors")
    check.add_argument("--db", required=True, help="database URL of the node (sqlite:///path)")
    check.add_argument("--party", required=True, help="whose log it is")
    check.add_argument("--public-key", required=True, action="append",
                       help="that party's Ed25519 public key (base64, as in cluster.toml), "
                            "or @FILE to read it from a .pub file; repeat it for keys the "
                            "node rotated out (older checkpoints are signed by them)")
    check.add_argument("--anchors", action="append", default=[], type=Path,
                       help="a JSON file of this party's heads held by a peer (repeatable)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=run_verify)
    export = commands.add_parser("anchors", help="write the signed heads of a peer this node holds")
    export.add_argument("--db", required=True, help="database URL of this node")
    export.add_argument("--node", required=True, help="this node's party id")
    export.add_argument("--peer", required=True, help="whose heads to export")
    export.add_argument("--out", required=True, type=Path, help="JSON file to write")
    export.set_defaults(func=run_anchors)


def _read_key(text: str) -> str:
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(path, "public_key", f"cannot read: {exc}") from exc
    return text


def _load_anchors(paths: list[Path]) -> list[Checkpoint]:
    anchors: list[Checkpoint] = []
    for path in paths:
        try:
            items = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(path, "anchors", f"cannot read a JSON list of heads: {exc}") from exc
        if not isinstance(items, list):
            raise ConfigError(path, "anchors", "expected a JSON list of heads")
        anchors.extend(Checkpoint.from_json(item) for item in items)
    return anchors


def run_verify(args: argparse.Namespace) -> int:
    keys = [public_key_from_b64(_read_key(text)) for text in args.public_key]
    start = time.perf_counter()
    try:
        report = verify(args.db, args.party, keys, _load_anchors(args.anchors))
    except AuditError as exc:
        print(f"meshmpc audit verify: error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    if args.json:
        print(json.dumps({**report.to_json(), "wall_s": round(elapsed, 3)}))
    else:
        state = "OK" if report.ok else f"{len(report.problems)} PROBLEM(S)"
        print(f"{args.party}: {report.entries} entries, {report.checkpoints} checkpoints, "
              f"{report.anchors} peer anchors checked in {elapsed:.2f} s: {state}")
        for problem in report.problems[:50]:
            print(f"  - {problem}")
        if len(report.problems) > 50:
            print(f"  ... and {len(report.problems) - 50} more")
    return 0 if report.ok else 1


def run_anchors(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from meshmpc.platform.audit import anchors_table

    engine = sa.create_engine(args.db)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(anchors_table).where(anchors_table.c.peer == args.peer)
                            .order_by(anchors_table.c.seq)).all()
    heads = [Checkpoint(args.peer, int(r.seq), bytes(r.head), float(r.ts),
                        bytes(r.signature)).to_json() for r in rows]
    args.out.write_text(json.dumps(heads, indent=1) + "\n")
    print(f"{args.node}: wrote {len(heads)} heads of {args.peer} to {args.out}")
    return 0
