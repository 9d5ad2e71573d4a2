"""Errors of the OT layer; each names the peer so the operator knows which link failed."""

from meshmpc.errors import MeshMPCError


class OtProtocolError(MeshMPCError, RuntimeError):
    """A peer sent a message that does not fit the protocol (wrong size, invalid point)."""

    def __init__(self, peer: str, what: str) -> None:
        self.peer = peer
        super().__init__(f"OT with party {peer!r}: {what}")


class OtInputError(MeshMPCError, ValueError):
    """Local arguments to an OT call are malformed (shape, dtype, count)."""
