"""``meshmpc-credit``: the credit applications' command line (also ``meshmpc credit``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from meshmpc.data.protect import install_log_masking, mask_text
from meshmpc.errors import MeshMPCError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add every credit subcommand to ``subparsers``."""
    from meshmpc_credit import demo, lifecycle_cli
    from meshmpc_credit.decision import serve
    from meshmpc_credit.strategy import cli as strategy_cli

    demo.register(subparsers)
    lifecycle_cli.register(subparsers)
    strategy_cli.register(subparsers)
    serve.register(subparsers)
    try:
        from meshmpc_credit import datagen
    except ImportError:
        return
    datagen.register(subparsers)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Entry point for ``meshmpc credit ...``."""
    parser = subparsers.add_parser("credit", help="SME credit applications (meshmpc-credit)")
    add_commands(parser.add_subparsers(dest="credit_command", metavar="COMMAND"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="meshmpc-credit", description="SME credit risk applications on meshmpc."
    )
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    install_log_masking()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except MeshMPCError as exc:
        print(f"meshmpc-credit {args.command}: error: {mask_text(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
