"""The ``meshmpc`` command line.

Subcommands are discovered through the ``meshmpc.commands`` entry-point group:
each entry point is a ``register(subparsers)`` callable that adds one
subcommand whose parser sets ``func`` to a ``(args) -> int`` handler. Other
packages (for example ``meshmpc-credit``) add their own commands the same way.

Errors end a command with one line on stderr (what is wrong, what to do) and
exit code 2 for user errors, 1 for unexpected ones; ``--debug`` (anywhere on
the line, or ``MESHMPC_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from meshmpc import __version__
from meshmpc.data.protect import install_log_masking, mask_text
from meshmpc.errors import MeshMPCError, stage_of
from meshmpc.userinput import HelpFormatter, explain_os_error

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="meshmpc", description="Privacy-preserving computation for SME credit risk.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"meshmpc {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the full traceback on errors (may be given anywhere)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in sorted(entry_points(group="meshmpc.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:  # a plug-in that fails to import must not break the rest
            print(f"meshmpc: command {entry.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(subparsers)
    return parser


def _split_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """Remove ``--debug`` wherever it is, so it works after a subcommand too."""
    rest = [a for a in argv if a != "--debug"]
    return rest, len(rest) != len(argv) or os.environ.get("MESHMPC_DEBUG") == "1"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit code (2 on a usage or input error)."""
    args_list, debug = _split_debug(sys.argv[1:] if argv is None else argv)
    if debug:
        os.environ["MESHMPC_DEBUG"] = "1"  # local party processes print tracebacks too
    install_log_masking()
    parser = build_parser()
    args = parser.parse_args(args_list)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"meshmpc {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every error ends in one line; --debug adds the traceback
        return report_error(args.command, exc, debug)


def report_error(command: str, exc: BaseException, debug: bool) -> int:
    """Print ``exc`` as one line (and its traceback with ``debug``); return the exit code."""
    if debug:
        traceback.print_exception(exc)
    code, text = describe_error(exc)
    stage = stage_of(exc)
    text = f"{text} [stage: {stage}]" if stage else text
    hint = "" if debug or code == 2 else " (run again with --debug for the traceback)"
    print(f"meshmpc {command}: error: {text}{hint}", file=sys.stderr)
    return code


def describe_error(exc: BaseException) -> tuple[int, str]:
    """Exit code and one-line text: 2 for a user error, 1 for an unexpected one."""
    code, text = _describe(exc)
    return code, mask_text(text)  # an error may quote a credit code or phone number


def _describe(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, MeshMPCError):
        return 2, str(exc)
    if isinstance(exc, OSError):
        advice = explain_os_error(exc, getattr(exc, "meshmpc_address", None))
        if advice is not None:
            return 2, advice
        if isinstance(exc, FileExistsError | FileNotFoundError | PermissionError):
            return 2, _one_line(str(exc))
    return 1, _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
