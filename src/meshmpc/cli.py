"""The ``meshmpc`` command line.

Subcommands are discovered through the ``meshmpc.commands`` entry-point group:
each entry point is a ``register(subparsers)`` callable that adds one
subcommand whose parser sets ``func`` to a ``(args) -> int`` handler. Other
packages (for example ``meshmpc-credit``) add their own commands the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from meshmpc import __version__
from meshmpc.errors import MeshMPCError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="meshmpc", description="Privacy-preserving computation for SME credit risk."
    )
    parser.add_argument("--version", action="version", version=f"meshmpc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in sorted(entry_points(group="meshmpc.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:  # a plug-in that fails to import must not break the rest
            print(f"meshmpc: command {entry.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit code (2 on a usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except MeshMPCError as exc:
        print(f"meshmpc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"meshmpc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
