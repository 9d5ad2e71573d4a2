"""Errors of the keyword PIR layer; each names the party, file, row or field at fault."""

from __future__ import annotations

from meshmpc.errors import MeshMPCError


class PirError(MeshMPCError):
    """Base class of every keyword-PIR error."""


class PirInputError(PirError, ValueError):
    """The server's database or the client's keys are unusable (names the row or key)."""


class PirProtocolError(PirError, ValueError):
    """A peer sent a malformed or inconsistent message (names the peer and field)."""


class LookupRefused(PirError, PermissionError):
    """The server's lookup gate refused a batch (a grant's cap, purpose or consent)."""


class StaleHintError(PirError, RuntimeError):
    """The server's database changed since the client downloaded its hint.

    Call ``PirClient.refresh`` (or query with ``auto_refresh=True``) to fetch
    the new hint; the old one is useless for the new version.
    """

    def __init__(self, server: str, held: str, current: str) -> None:
        self.server = server
        self.held = held
        self.current = current
        super().__init__(
            f"party {server!r} now serves database version {current}, but the hint held is "
            f"for version {held}: refresh the hint"
        )
