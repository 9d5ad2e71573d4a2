"""Errors raised by the mesh network. Each names the peer it concerns."""

from __future__ import annotations

from meshmpc.errors import MeshMPCError


class NetworkError(MeshMPCError, ConnectionError):
    """A link to a peer failed; the link is closed and pending receives fail too."""

    def __init__(self, peer: str | None, message: str) -> None:
        self.peer = peer
        prefix = f"link to {peer}: " if peer else ""
        super().__init__(prefix + message)


class AuthenticationError(NetworkError):
    """The peer's identity key is unknown or does not match the pinned key."""


class TamperedFrameError(NetworkError):
    """A frame failed AEAD authentication (modified ciphertext, header or tag)."""


class ReplayedFrameError(NetworkError):
    """A frame carried a counter already seen: a replay or a reordering."""


class DroppedFrameError(NetworkError):
    """A frame carried a counter ahead of the expected one: frames were dropped."""


class TruncatedFrameError(NetworkError):
    """The connection ended in the middle of a frame."""


class FrameTooLargeError(NetworkError):
    """A frame announced a length above the configured limit."""


class PeerDisconnectedError(NetworkError):
    """The peer closed the link, possibly in the middle of a message."""


class ConnectTimeoutError(NetworkError, TimeoutError):
    """The peer never connected within the configured timeout (after retries)."""


class MalformedMessageError(NetworkError):
    """A decrypted frame did not decode to a valid message."""

    def __init__(self, message: str, peer: str | None = None) -> None:
        super().__init__(peer, message)


class ProtocolMismatchError(NetworkError):
    """The peer speaks another wire version or belongs to another cluster."""


class ConfigMismatchError(NetworkError):
    """An authenticated peer runs with a different cluster config (fingerprint)."""


class HandshakeRejected(NetworkError):
    """An unauthenticated connection was dropped (logged; never fails a peer)."""


class SessionRefused(NetworkError):
    """The peer refused to open or resume the link's session (a restarted process:
    its protocol state is gone, so the job cannot continue)."""


class LinkBrokenError(PeerDisconnectedError):
    """A dropped link was not restored within the grace period, or records failed
    authentication more often than they may be fetched again."""
