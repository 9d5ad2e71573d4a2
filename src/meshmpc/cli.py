"""The ``meshmpc`` command line.

Subcommands are discovered through the ``meshmpc.commands`` entry-point group:
each entry point is a ``register(subparsers)`` callable that adds one
subcommand whose parser sets ``func`` to a ``(args) -> int`` handler. Other
packages (for example ``meshmpc-credit``) add their own commands the same way.

Errors end a command with one line on stderr (what is wrong, what to do) and
exit code 2 for user errors, 1 for unexpected ones; ``--debug`` (anywhere on
the line, or ``MESHMPC_DEBUG=1``) adds the traceback. ``--log-level info``
(anywhere, or ``MESHMPC_LOG_LEVEL``) writes the structured event log
(``meshmpc.net``: listen, links up and down, rejected handshakes, aborts) to
stderr with a UTC timestamp and level, e.g. for the journal of a service.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
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
    parser.add_argument("--log-level", metavar="LEVEL",
                        help="event log on stderr at this level: debug, info, warning, error "
                        "(may be given anywhere; default: warnings only, without timestamps)")
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


def _split_log_level(argv: list[str]) -> tuple[list[str], str | None]:
    """Remove ``--log-level LEVEL`` (or ``--log-level=LEVEL``) wherever it is."""
    rest, level, i = [], os.environ.get("MESHMPC_LOG_LEVEL"), 0
    while i < len(argv):
        if argv[i] == "--log-level" and i + 1 < len(argv):
            level, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith("--log-level="):
            level = argv[i].split("=", 1)[1]
        else:
            rest.append(argv[i])
        i += 1
    return rest, level


def configure_logging(level: str) -> None:
    """Event log lines ``2026-12-01T12:00:00Z INFO meshmpc.net link.up party=...`` on stderr.

    For this process (a node's ``psi``, ``pir serve``, ``job run --party``...);
    the processes of an all-local ``job run`` keep the default.
    """
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        print(f"meshmpc: --log-level {level!r}: use debug, info, warning or error",
              file=sys.stderr)
        raise SystemExit(2)
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                  "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger("meshmpc")
    root.handlers = [handler]
    root.setLevel(number)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit code (2 on a usage or input error)."""
    args_list, debug = _split_debug(sys.argv[1:] if argv is None else argv)
    args_list, log_level = _split_log_level(args_list)
    if log_level:
        configure_logging(log_level)
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
