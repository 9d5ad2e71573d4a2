"""``meshmpc credit strategy validate|backtest|publish|rollback|challenge|list``.

Messages are printed in Chinese and English. Identities and roles come from a
node's accounts (``--node-db``) or are passed explicitly (``--author-roles``,
``--approver-roles``); publishing refuses an author approving their own version.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from meshmpc_credit.strategy.backtest import backtest, read_cases
from meshmpc_credit.strategy.document import DEFAULT_STRATEGY, StrategyError
from meshmpc_credit.strategy.store import Actor, StrategyStore, actor_from_node
from meshmpc_credit.strategy.validate import check_grades, validate


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``strategy`` and its subcommands."""
    parser = subparsers.add_parser("strategy", help="zero-code strategies / 零代码策略")
    sub = parser.add_subparsers(dest="strategy_command", metavar="ACTION", required=True)
    p = sub.add_parser("validate", help="check a JDM strategy / 校验策略")
    p.add_argument("file", type=Path, nargs="?", default=DEFAULT_STRATEGY)
    p.add_argument("--strategy", default="preloan")
    p.set_defaults(func=_validate)
    p = sub.add_parser("backtest", help="backtest on history / 回测")
    p.add_argument("file", type=Path)
    p.add_argument("--history", type=Path, required=True, help="JSON lines of cases")
    p.add_argument("--lgd", type=float, default=0.45)
    _store_args(p, required=False)
    p.set_defaults(func=_backtest)
    p = sub.add_parser("publish", help="propose and publish (maker-checker) / 发布")
    p.add_argument("file", type=Path, nargs="?", help="new version (or --version N)")
    p.add_argument("--version", type=int, help="approve this stored draft instead")
    p.add_argument("--author", help="who wrote the new version (with FILE)")
    p.add_argument("--note", default="")
    p.add_argument("--challenger-share", type=float,
                   help="run as challenger on this share of traffic instead of champion")
    p.add_argument("--history", type=Path,
                   help="backtest on these cases first; headline figures go to the audit log")
    _store_args(p)
    _approver_args(p)
    p.set_defaults(func=_publish)
    p = sub.add_parser("rollback", help="put an earlier version back / 回滚")
    p.add_argument("--to", type=int, required=True, dest="version")
    _store_args(p)
    _approver_args(p)
    p.set_defaults(func=_rollback)
    p = sub.add_parser("list", help="versions and the one in service / 版本列表")
    _store_args(p)
    p.set_defaults(func=_list)


def _store_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--db", required=required, help="store URL, e.g. sqlite:///credit.db")
    p.add_argument("--strategy", default="preloan")


def _approver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--approver", required=True)
    p.add_argument("--node-db", help="node database: roles from its accounts")
    p.add_argument("--author-roles", default="", help="comma list (without --node-db)")
    p.add_argument("--approver-roles", default="", help="comma list (without --node-db)")
    p.add_argument("--audit-key", type=Path, help="node identity key: audit publications")
    p.add_argument("--party", default="bank", help="audit log party id")


def _actor(args: argparse.Namespace, name: str, roles: str) -> Actor:
    if args.node_db:
        return actor_from_node(args.node_db, name)
    return Actor(name, frozenset(r for r in roles.split(",") if r))


def _store(args: argparse.Namespace) -> StrategyStore:
    audit = None
    if getattr(args, "audit_key", None):
        from meshmpc.net.keys import IdentityKey
        from meshmpc.platform.audit import AuditLog

        key = IdentityKey.load(args.party, args.audit_key)
        audit = AuditLog(args.node_db or args.db, args.party, key.signing_key)
    return StrategyStore(args.db, audit=audit)


def _validate(args: argparse.Namespace) -> int:
    compiled = validate(args.strategy, args.file.read_bytes())
    cutoffs = ", ".join(f"{g} >= {s}" for g, s in check_grades(compiled))
    print(f"策略有效 / strategy {args.strategy} is valid ({args.file}): grades {cutoffs}")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    candidate = validate(args.strategy, args.file.read_bytes())
    champion = None
    if args.db:
        store = StrategyStore(args.db)
        state = store.service_state(args.strategy)
        champion = store.compiled(args.strategy, state.champion) if state else None
    report = backtest(candidate, read_cases(args.history), champion, args.lgd)
    print(json.dumps(report, ensure_ascii=False, indent=1, default=_plain))
    figures = report["figures"]
    print(f"通过率 / approval rate {figures['approval_rate']:.1%}, "
          f"预期损失 / expected loss {figures['expected_loss']:,.0f}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    store = _store(args)
    approver = _actor(args, args.approver, args.approver_roles)
    if (args.file is None) == (args.version is None) or (args.file and not args.author):
        raise StrategyError(args.strategy, "publish needs FILE with --author, or --version N "
                            "of a stored draft")
    version = args.version or store.propose(args.strategy, args.file.read_bytes(),
                                            _actor(args, args.author, args.author_roles),
                                            args.note)
    if args.challenger_share is not None:
        state = store.challenge(args.strategy, version, args.challenger_share, approver)
        print(f"挑战者已上线 / v{version} runs as challenger on "
              f"{state.challenger_share:.0%} of traffic (champion v{state.champion})")
    else:
        summary = _headline(store, args, version) if args.history else None
        state = store.publish(args.strategy, version, approver, summary)
        print(f"已发布 / published {args.strategy} v{version} "
              f"(approver {approver.name}, generation {state.generation})")
    return 0


def _headline(store: StrategyStore, args: argparse.Namespace, version: int) -> dict[str, Any]:
    """Backtest ``version`` against the champion; the figures worth keeping in the audit."""
    state = store.service_state(args.strategy)
    champion = store.compiled(args.strategy, state.champion) if state else None
    report = backtest(store.compiled(args.strategy, version), read_cases(args.history),
                      champion)
    figures = report["figures"]
    summary = {"cases": figures["cases"], "approval_rate": figures["approval_rate"],
               "expected_loss": figures["expected_loss"],
               "swap_in": report.get("swap_in"), "swap_out": report.get("swap_out"),
               "swap_in_estimate": report["swap_in_estimate"]}
    print(f"回测 / backtest: approval {figures['approval_rate']:.1%}, expected loss "
          f"{figures['expected_loss']:,.0f}, swap-ins {summary['swap_in']}")
    return summary


def _rollback(args: argparse.Namespace) -> int:
    state = _store(args).rollback(args.strategy, args.version,
                                  _actor(args, args.approver, args.approver_roles))
    print(f"已回滚 / {args.strategy} rolled back to v{state.champion} "
          f"(generation {state.generation})")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = StrategyStore(args.db)
    state = store.service_state(args.strategy)
    for row in store.versions(args.strategy):
        mark = "*" if state and row["version"] == state.champion else \
            "c" if state and row["version"] == state.challenger else " "
        print(f"{mark} v{row['version']:<4} {row['status']:<9} {row['sha256'][:12]} "
              f"author={row['author']} approver={row['approver'] or '-'} {row['note']}")
    if state is None:
        print(f"尚未发布 / strategy {args.strategy} has no version in service")
    return 0


def _plain(value: Any) -> Any:
    return str(value)
