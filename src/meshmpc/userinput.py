"""Helpers for errors a user can act on: unknown keys, OS errors, one-line messages.

Every command line tool of meshmpc ends a user mistake with one line saying
what is wrong and what to do (tracebacks only with ``--debug``). This module
holds the pieces several commands share:

* :class:`UserError`: a mistake in how a command was called or configured;
* :func:`check_known_keys`: reject misspelled keys in a config, schema or job
  file, naming the key and the closest valid one (``difflib``);
* :func:`explain_os_error`: turn the socket errors a deployment meets first
  (address in use, address not on this machine, ...) into advice.
"""

from __future__ import annotations

import argparse
import difflib
import errno
from collections.abc import Iterable

from meshmpc.errors import MeshMPCError


class UserError(MeshMPCError, ValueError):
    """A command was called or configured wrongly; the message says how to fix it."""


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name most like ``name`` (``difflib``), or None when none is close."""
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_message(key: str, valid: Iterable[str], where: str) -> str:
    """``unknown key 'nulable' in [[columns]] 'x' (did you mean 'nullable'?)``."""
    valid = sorted(valid)
    hint = closest(key, valid)
    advice = f"did you mean {hint!r}?" if hint else f"valid keys: {', '.join(valid)}"
    return f"unknown key {key!r} in {where} ({advice})"


def check_known_keys(found: Iterable[str], valid: Iterable[str], where: str) -> str | None:
    """The message for the first key of ``found`` not in ``valid``; None when all are known."""
    allowed = set(valid)
    for key in found:
        if key not in allowed:
            return unknown_key_message(key, allowed, where)
    return None


def explain_os_error(exc: OSError, address: str | None = None) -> str | None:
    """Advice for a socket error a user can fix, or None for other errors."""
    at = f" {address}" if address else ""
    if exc.errno == errno.EADDRINUSE:
        return (f"address{at} is already in use (another meshmpc, or another program, "
                f"listens there): stop it or choose another port in the cluster config")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"address{at} is not an address of this machine: listen on one of this "
                f"machine's addresses (or 0.0.0.0) and advertise the public one to peers")
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on{at}: use a port above 1023 or run with the right rights"
    return None


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the examples' line breaks and states each option's default.

    The default is added unless the help already says it, or there is none to
    state (a flag that is off, an option that is unset by default).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"
