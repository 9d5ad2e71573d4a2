"""Application-level keepalive: notice a half-open connection and resume it.

A connection whose peer (or a middlebox between) vanished without FIN or RST
stays "open" for TCP: kernel keepalive probes fire only on a connection with
nothing unacknowledged in flight, and a proxy's kernel answers them anyway, so
such a link could hang until the resume grace period ran out. Each registered
connection therefore ticks every ``keepalive_s``: after an interval in which
nothing arrived it sends a PING record (sealed under the connection's keys, so
a stranger can neither forge nor answer one), the peer answers PONG at once,
and a connection that has received nothing at all for ``keepalive_timeout_s``
is dropped as lost. The session then resumes it on a fresh connection (or
fails, when resumption is off), exactly as after a reset.

Any record counts as a sign of life, so a busy link sends no PINGs. A tick that
fires far too late means this process's own event loop was blocked: what the
peer sent meanwhile may be unread in the socket, so that silence is not held
against the peer. A peer whose loop is blocked cannot answer: it is dropped
after the timeout and resumes once its loop runs again, within the grace period
(so a party may block its loop for up to ``keepalive_timeout_s`` plus
``resume_grace_s`` before its links fail).

Each tick also checks that the key the peer authenticated with has not been
revoked since (``revoked_keys``, or the revocation file, which is re-read when it
changes): a revoked key ends its open links within a tick or two, not only at
the next handshake.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from meshmpc.errors import ConfigError
from meshmpc.net import framing
from meshmpc.net.errors import AuthenticationError, PeerDisconnectedError
from meshmpc.net.log import event

if TYPE_CHECKING:
    from meshmpc.net.link import Link


class Keepalive:
    """The keepalive timer of one connection."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._timer: asyncio.TimerHandle | None = None
        self._heard_bytes = 0  # the reader's byte count when a tick last saw it move
        self._heard_at = self._tick_at = 0.0
        self.pings = 0
        self._warned = False

    def start(self) -> None:
        """Begin ticking (once the connection is registered)."""
        link = self.link
        if link.owner.keepalive_s <= 0 or link.error is not None:
            return
        self._heard_at = self._tick_at = link.loop.time()
        self._heard_bytes = link.reader.bytes_read
        self._timer = link.loop.call_later(link.owner.keepalive_s, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        """Note whether anything arrived; ping after a silent interval; drop the
        connection after a silent timeout."""
        self._timer = None
        link = self.link
        if link.error is not None or link.closing:
            return
        if self._peer_revoked():
            return
        now, every = link.loop.time(), link.owner.keepalive_s
        if link.reader.bytes_read != self._heard_bytes or now - self._tick_at > 2 * every:
            self._heard_bytes, self._heard_at = link.reader.bytes_read, now
        silent = now - self._heard_at
        if silent >= link.owner.keepalive_timeout_s:
            link.drop(PeerDisconnectedError(
                link.peer, f"nothing received for {silent:.1f} s although pinged every "
                f"{every:g} s: connection presumed dead (half-open)"))
            return
        if silent >= every * 0.999:
            self.pings += 1
            link.write_control(framing.PING, b"")
        self._tick_at = now
        self._timer = link.loop.call_later(every, self._tick)

    def _peer_revoked(self) -> bool:
        """A key revoked while its link is up ends the link (and the session: a resume
        would be refused anyway) at the next tick, and the peer is told why."""
        link = self.link
        key = link.handshake.peer_key
        if key is None or link.session is None:
            return False
        try:
            revoked = link.owner.key_revoked(key)
        except ConfigError as exc:  # e.g. the revocation file was removed: say so once
            if not self._warned:
                self._warned = True
                event(logging.WARNING, "link.revocations_unreadable", peer=link.peer,
                      reason=str(exc))
            return False
        if not revoked:
            return False
        link.session.fail(AuthenticationError(
            link.peer, "its identity key was revoked while the link was up (revoked_keys or "
            "the revocation file): link closed; it must connect with a key that is pinned "
            "and not revoked"))
        return True
