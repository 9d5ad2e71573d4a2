"""Errors raised by private set intersection; each names the party, file, column or row.

All subclass :class:`meshmpc.errors.MeshMPCError` and the matching builtin.
"""

from __future__ import annotations

from meshmpc.errors import DataError, MeshMPCError


class PsiError(MeshMPCError, RuntimeError):
    """A PSI run failed (a peer vanished, a protocol step could not complete)."""


class PsiInputError(DataError):
    """A party's PSI input cannot be used: missing file or column, bad or duplicate keys.

    The message names the file, the column and example row numbers (1-based data
    rows, the header not counted), so the user can fix the file.
    """

    def __init__(self, path: object, problem: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        where = f"column {column!r}: " if column else ""
        super().__init__(f"{self.path}: {where}{problem}")


class PsiMismatchError(MeshMPCError, ValueError):
    """Two parties started the same PSI job with different protocols or parameters."""

    def __init__(self, party: str, peer: str, field: str, mine: object, theirs: object) -> None:
        self.party = party
        self.peer = peer
        self.field = field
        super().__init__(
            f"party {party}: PSI parameter {field!r} differs from party {peer}: "
            f"{party} has {mine!r}, {peer} has {theirs!r}; start both with the same settings"
        )
