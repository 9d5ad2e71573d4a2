"""``meshmpc audit``: verify a node's audit log and export the heads it anchors for a peer.

``meshmpc audit verify --db sqlite:///node/node.db --party bank --public-key KEY``
checks the chain and the node's signed checkpoints; each ``--anchors FILE``
(written on a peer by ``meshmpc audit anchors --peer bank``) adds the heads that
peer holds, which a node cannot re-sign after the fact. Exit code 0 when the
log verifies, 1 when a problem is found (each one printed), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from meshmpc.errors import ConfigError
from meshmpc.net.keys import public_key_from_b64
from meshmpc.platform.audit import AuditError, Checkpoint, verify


def register_audit(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="verify an audit log or export peers' anchors",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    check = commands.add_parser("verify", help="check the hash chain, checkpoints and anchors")
    check.add_argument("--db", required=True, help="database URL of the node (sqlite:///path)")
    check.add_argument("--party", required=True, help="whose log it is")
    check.add_argument("--public-key", required=True,
                       help="that party's Ed25519 public key (base64, as in cluster.toml), "
                            "or @FILE to read it from a .pub file")
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
    key = public_key_from_b64(_read_key(args.public_key))
    start = time.perf_counter()
    try:
        report = verify(args.db, args.party, key, _load_anchors(args.anchors))
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
