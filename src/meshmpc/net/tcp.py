"""The TCP mesh: one authenticated, encrypted link between every pair of parties.

Each party listens on its bind address (``listen``, else ``address``) and
dials, at their advertised addresses, the parties listed after it (so each
pair has exactly one link). A mesh may use only some of the cluster's
parties (``parties=``): it then waits for those alone. Start-up order does
not matter: dialing retries with backoff until the connect timeout, and a
line is printed every few seconds while a peer is awaited.

A link that drops while both parties live is resumed (see
:mod:`meshmpc.net.session`): the dialer of the pair reconnects with back-off
within ``resume_grace_s`` and both resend what the other lacks; a peer that
asks to resume a session this process does not know, or opens a new session
while one with it is in progress (a restarted process), is refused and the
session fails.

Strangers cannot hurt a mesh: a connection that fails its handshake, claims
a party it cannot prove, or duplicates a registered link is logged and
dropped at once (its memory freed); at most ``max_handshakes`` connections
may be unauthenticated at a time (the oldest is dropped for a new one), and
each has ``handshake_timeout_s`` to finish. Only registered, authenticated
links fail a peer's mailbox or :meth:`TcpMesh.start`; an authenticated peer
whose config fingerprint differs fails start-up with both fingerprints named.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from meshmpc.errors import ConfigError, note_stage
from meshmpc.net.config import ClusterConfig, WanProfile
from meshmpc.net.errors import (
    AuthenticationError,
    ConfigMismatchError,
    ConnectTimeoutError,
    HandshakeRejected,
    NetworkError,
    SessionRefused,
)
from meshmpc.net.keys import IdentityKey, PublicKey
from meshmpc.net.link import Link, one_line
from meshmpc.net.log import RateLimit, event
from meshmpc.net.mesh import Mesh
from meshmpc.net.session import CAN_RESUME, RESUMING, Session
from meshmpc.userinput import explain_os_error

DEFAULT_SPIN_S = float(os.environ.get("MESHMPC_SPIN_US", "150")) / 1e6
"""How long a waiting receive busy-polls before sleeping (see Mailbox)."""
WAIT_REPORT_S = 5.0
"""Seconds between "waiting for ..." lines during start-up."""
BACKOFF_START_S, BACKOFF_MAX_S = 0.02, 1.0


def print_waiting(line: str) -> None:
    """Default start-up progress sink: one line on stderr."""
    print(line, file=sys.stderr, flush=True)


class TcpMesh(Mesh):
    """A party's end of the real mesh. Use ``await TcpMesh.connect(...)``."""

    def __init__(
        self,
        config: ClusterConfig,
        party: str,
        identity: IdentityKey,
        wan: WanProfile | None = None,
        max_message_bytes: int | None = None,
        spin_s: float = DEFAULT_SPIN_S,
        parties: Sequence[str] | None = None,
        connect_timeout_s: float | None = None,
        on_waiting: Callable[[str], None] | None = print_waiting,
        wait_report_s: float = WAIT_REPORT_S,
    ) -> None:
        members = _members(config, party, parties)
        super().__init__(party, members, spin_s)
        if identity.party != party:
            raise ValueError(f"identity key is for {identity.party!r}, not {party!r}")
        self.config = config
        self.identity = identity
        self.wan = wan if wan is not None else config.wan
        self.fingerprint = config.fingerprint
        self.max_frame_bytes = config.max_frame_bytes
        self.max_message_bytes = max_message_bytes or config.max_message_bytes
        self.handshake_timeout_s = config.handshake_timeout_s
        self.connect_timeout_s = connect_timeout_s or config.connect_timeout_s
        self.resume_grace_s = config.resume_grace_s
        self.resend_buffer_bytes = config.resend_buffer_bytes
        self.keepalive_s = config.keepalive_s
        self.keepalive_timeout_s = config.keepalive_timeout_s
        self.links: dict[str, Link] = {}
        self.peer_sessions: dict[str, Session] = {}
        self._first_ids: dict[str, bytes] = {}  # see first_session_id
        self._redials: dict[str, asyncio.Task[None]] = {}
        self.connections: set[Link] = set()
        self.rejected = 0
        self.rejections: deque[str] = deque(maxlen=5)
        self._on_waiting = on_waiting
        self._wait_report_s = wait_report_s
        self._pending: dict[Link, None] = {}  # inbound, unauthenticated, oldest first
        self._server: asyncio.AbstractServer | None = None
        self._ready: dict[str, asyncio.Future[Link]] = {}
        self._log_limit = RateLimit()
        self.inbound_relay: Any = None
        """A :class:`meshmpc.net.relay.InboundRelay` routing new inbound connections."""

    @classmethod
    async def connect(
        cls, config: ClusterConfig, party: str, identity: IdentityKey, **kwargs: Any
    ) -> TcpMesh:
        """Listen, dial and authenticate every link; return once all are up."""
        mesh = cls(config, party, identity, **kwargs)
        try:
            await mesh.start()
        except BaseException as exc:
            note_stage(exc, "wait", "connecting the mesh")
            await mesh.close()
            raise
        return mesh

    # ----- start-up -------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = {p: loop.create_future() for p in self.peers}
        host, port = self.config.party(self.party).bind
        try:
            self._server = await loop.create_server(
                self._inbound, host=host, port=port, reuse_address=True
            )
        except OSError as exc:
            advice = explain_os_error(exc, f"{host}:{port}") or (exc.strerror or str(exc))
            raise NetworkError(None, f"{self.party} cannot listen on {host}:{port}: "
                               f"{advice} (check `listen`/`address` for "
                               f"{self.party} in {self.config.path or 'the cluster config'})"
                               ) from exc
        event(logging.INFO, "mesh.listen", party=self.party, bind=f"{host}:{port}",
              peers=",".join(self.peers), fingerprint=self.config.fingerprint_hex)
        deadline = loop.time() + self.connect_timeout_s
        later = self.parties[self.parties.index(self.party) + 1 :]
        tasks = [asyncio.create_task(self._dial(p, deadline)) for p in later]
        tasks.append(asyncio.create_task(self._report_waiting(loop.time())))
        try:
            await self._await_links(deadline)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        event(logging.INFO, "mesh.ready", party=self.party, peers=",".join(self.peers))

    def _inbound(self) -> asyncio.BaseProtocol:
        """A new inbound connection: a link, or the relay's router when one is installed."""
        if self.inbound_relay is not None:
            return self.inbound_relay.protocol()
        return self._accept()

    def _accept(self) -> Link:
        link = Link(self, dialer=False)
        self.connections.add(link)
        self._pending[link] = None
        if len(self._pending) > self.config.max_handshakes:
            oldest = next(iter(self._pending))
            oldest._fail(HandshakeRejected(oldest.peer, "too many pending handshakes"))
        return link

    async def _await_links(self, deadline: float) -> None:
        pending = set(self._ready.values())
        while pending:
            timeout = deadline - asyncio.get_running_loop().time()
            done, pending = await asyncio.wait(
                pending, timeout=max(timeout, 0), return_when=asyncio.FIRST_EXCEPTION
            )
            for fut in done:
                if fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
            if pending and timeout <= 0:
                missing = self.missing()
                raise ConnectTimeoutError(
                    ", ".join(missing),
                    f"never connected within {self.connect_timeout_s:g}s "
                    f"(waiting at {self._addresses(missing)}){self._rejection_note()}",
                )

    def missing(self) -> list[str]:
        """Peers whose link is not up yet."""
        return [p for p, f in self._ready.items() if not f.done()]

    def _addresses(self, peers: list[str]) -> str:
        return ", ".join(f"{p} at {self.config.party(p).address}" for p in peers)

    def _rejection_note(self) -> str:
        if not self.rejected:
            return ""
        return (f"; {self.rejected} connection(s) rejected, last: "
                f"{'; '.join(self.rejections)}")

    async def _report_waiting(self, started: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._wait_report_s)
            missing = self.missing()
            if not missing or self._on_waiting is None:
                continue
            line = (f"{self.party}: waiting for {self._addresses(missing)}, "
                    f"{loop.time() - started:.0f} s of {self.connect_timeout_s:g} s")
            event(logging.INFO, "mesh.waiting", party=self.party, missing=",".join(missing))
            self._on_waiting(line)

    async def _dial(self, peer: str, deadline: float) -> None:
        """Dial ``peer`` until a link is registered, retrying with backoff."""
        loop = asyncio.get_running_loop()
        target = self.config.party(peer)
        delay, attempts, last_error = BACKOFF_START_S, 0, ""
        while not self._ready[peer].done():
            attempts += 1
            try:
                _, link = await loop.create_connection(
                    lambda: self._dialed(peer), target.host, target.port
                )
                await link.ready
                return
            except OSError as exc:  # NetworkError is an OSError too (ConnectionError)
                last_error = one_line(str(exc), 200)
                if isinstance(exc, ConfigMismatchError):
                    return  # reported by link_dropped
            if loop.time() + delay > deadline:
                self._set_ready_error(peer, ConnectTimeoutError(
                    peer, f"no link to {target.address} after {attempts} attempts in "
                    f"{self.connect_timeout_s:g}s (last error: {last_error})"
                ))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _dialed(self, peer: str, session: Session | None = None) -> Link:
        link = Link(self, dialer=True, expected_peer=peer, session=session)
        self.connections.add(link)
        return link

    async def _redial(self, session: Session) -> None:
        """Reconnect to the session's peer with back-off until it resumes or fails."""
        loop = asyncio.get_running_loop()
        target = self.config.party(session.peer)
        delay = BACKOFF_START_S
        while session.link is None and session.error is None and not session.closed:
            try:
                _, link = await loop.create_connection(
                    lambda: self._dialed(session.peer, session), target.host, target.port)
                await link.ready
            except OSError as exc:  # NetworkError is an OSError too
                if isinstance(exc, SessionRefused):
                    return  # the session failed with it (link_dropped)
                if session.link is None and isinstance(exc, NetworkError):
                    session.last_loss = exc
            if session.link is not None:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _set_ready_error(self, peer: str, error: BaseException) -> None:
        fut = self._ready.get(peer)
        if fut is not None and not fut.done():
            fut.set_exception(error)

    # ----- LinkOwner: what links ask of their mesh -------------------------------

    def pinned_key(self, peer: str) -> tuple[PublicKey, ...]:
        """The keys ``peer`` may authenticate with now (rotation overlap, revocations)."""
        try:
            return self.config.accepted_keys(peer)
        except ConfigError as exc:
            raise AuthenticationError(peer, exc.problem) from exc

    def key_revoked(self, key: PublicKey) -> bool:
        """Whether a key an open link authenticated with has been revoked since."""
        return self.config.is_revoked(key)

    def check_claim(self, peer: str, dialer: bool) -> None:
        """Reject (before any crypto) a HELLO claiming a party that cannot be on this link."""
        if peer == self.party or peer not in self._ready:
            raise HandshakeRejected(peer, "claims a party that is not a peer of this mesh")
        mine = self.parties.index(self.party)
        if not dialer and self.parties.index(peer) > mine:
            raise HandshakeRejected(peer, "dialed us, but we dial that party")
        if peer in self.links and not self.resumable:
            raise HandshakeRejected(peer, "already connected")

    @property
    def resumable(self) -> bool:
        """Whether this mesh resumes dropped links (``resume_grace_s`` > 0)."""
        return self.resume_grace_s > 0

    def link_authenticated(self, link: Link) -> bool:
        """Register a link authenticated in both directions, with its session (new or
        resumed); False for a duplicate."""
        peer = link.peer
        assert peer is not None and link.session is not None
        self._pending.pop(link, None)
        fut = self._ready.get(peer)
        current = self.peer_sessions.get(peer)
        resuming = current is link.session
        if fut is None or (not resuming and (fut.done() or peer in self.links)):
            return False
        old = self.links.get(peer)
        if old is not None and old is not link:
            old.abandon(NetworkError(peer, "replaced by a resumed connection"), tell=False)
            self.connections.discard(old)
        link.registered = True
        link.stats = self.stats[peer]
        self.links[peer] = link
        self.peer_sessions[peer] = link.session
        if not fut.done():
            fut.set_result(link)
        event(logging.INFO, "link.resumed" if resuming else "link.up", party=self.party,
              peer=peer, role="dialer" if link.dialer else "listener")
        return True

    def _new_session(self, peer: str, session_id: bytes, dialer: bool,
                     resumable: bool) -> Session:
        return Session(self.mailbox, peer, session_id, dialer, resumable,
                       self.resend_buffer_bytes, self.resume_grace_s,
                       on_lost=self._session_lost, on_failed=self._session_failed)

    def open_session(self, link: Link, session_id: bytes, resumable: bool) -> Session:
        """The dialer's new session, as the listener accepted it."""
        assert link.peer is not None
        self._first_ids.pop(link.peer, None)  # a later fresh session gets a fresh id
        return self._new_session(link.peer, session_id, True, resumable)

    def first_session_id(self, peer: str) -> bytes:
        """The id the dialer offers for its first session with ``peer``: the same on every
        attempt until a session opens, so a first connection that died after the listener
        had opened the session but before its answer arrived is resumed, not refused as a
        restarted process (only this process knows the id; it travels inside the
        authenticated channel)."""
        return self._first_ids.setdefault(peer, os.urandom(16))

    def session_for(self, link: Link, session_id: bytes, flags: int) -> Session:
        """The listener's answer to a SESSION request: the session to resume, a new one,
        or :class:`SessionRefused` when the peer or we were restarted mid-session."""
        peer = link.peer
        assert peer is not None
        current = self.peer_sessions.get(peer)
        live = current is not None and current.error is None and not current.closed
        if flags & RESUMING:
            if current is not None and current.id == session_id and current.error is not None:
                raise SessionRefused(peer, f"cannot resume: the session failed here "
                                     f"({one_line(str(current.error), 200)})")
            if current is None or current.id != session_id or not live or not current.resumable:
                error = SessionRefused(peer, "asks to resume a link session this process does "
                                       "not have (was this process restarted?); its protocol "
                                       "state is gone: run the job again")
                if current is None:
                    self._set_ready_error(peer, error)
                raise error
            return current
        if live and current is not None and current.resumable and not current.dialer \
                and current.id == session_id:
            return current  # its first connection died before our answer reached it
        if live and current is not None and current.resumable:
            error = SessionRefused(peer, "opened a new session while ours was in progress: "
                                   "it was restarted and its protocol state is gone; run the "
                                   "job again")
            current.fail(error)
            raise error
        resumable = bool(flags & CAN_RESUME) and self.resumable
        return self._new_session(peer, session_id, False, resumable)

    def _session_lost(self, session: Session) -> None:
        """A session's connection dropped: its dialer reconnects (the listener waits)."""
        task = self._redials.get(session.peer)
        if session.dialer and (task is None or task.done()):
            self._redials[session.peer] = asyncio.create_task(self._redial(session))
        if self.links.get(session.peer) is not None and session.link is None:
            self.links.pop(session.peer, None)

    def _session_failed(self, session: Session, error: NetworkError) -> None:
        """A session ended for good: log it and fail start-up if it is still waiting."""
        closing = session.closed or session.peer_closed
        event(logging.INFO if closing else logging.WARNING,
              "link.closed" if closing else "link.failed", party=self.party,
              peer=session.peer, error=type(error).__name__, reason=one_line(str(error), 200))
        self._set_ready_error(session.peer, error)

    def link_dropped(self, link: Link, error: NetworkError) -> None:
        """A link failed: forget it at once; only a registered (or authenticated but
        mismatched) link concerns its peer, anything else is a rejected stranger."""
        self.connections.discard(link)
        self._pending.pop(link, None)
        if link.registered:
            resumable = link.session is not None and link.session.resumable
            if resumable and self.links.get(link.peer or "") is link:
                del self.links[link.peer or ""]  # a resumed connection takes its place
            return  # its session decides: resume or fail
        if isinstance(error, SessionRefused) and link.peer is not None:
            if link.session is not None:
                link.session.fail(error)
            self._set_ready_error(link.peer, error)
            return
        if isinstance(error, ConfigMismatchError) and link.peer is not None:
            self._set_ready_error(link.peer, error)
            return
        if link.dialer:
            return  # our own dial: _dial retries and reports
        self.rejected += 1
        reason = one_line(f"claiming {link.peer or error.peer or '?'}: {error}", 200)
        self.rejections.append(reason)
        if self._log_limit.allow():
            event(logging.WARNING, "handshake.rejected", party=self.party,
                  count=self.rejected, reason=reason)

    # ----- sending and closing -------------------------------------------------------

    def _session(self, peer: str) -> Session:
        """The peer's session: registered here, or (``pir serve``) its link's."""
        self._check_peer(peer)
        session = self.peer_sessions.get(peer)
        if session is None:
            link = self.links.get(peer)
            session = link.session if link is not None else None
        if session is None:
            raise NetworkError(peer, "no link (mesh not started or already closed)")
        return session

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        try:
            await self._session(peer).send(tag, obj)
        except NetworkError as exc:
            note_stage(exc, "wait", f"sending {tag!r} to {peer}")
            raise

    async def flush(self) -> None:
        peers = set(self.peer_sessions) | set(self.links)
        try:
            await asyncio.gather(*(self._session(p).flush() for p in peers))
        except NetworkError as exc:
            note_stage(exc, "wait", "flushing what was sent")
            raise

    async def close(self, error: BaseException | str | None = None) -> None:
        """Close every link; with ``error``, peers are told why (an ABORT record).
        An orderly close waits (within the grace period) until each peer has
        acknowledged everything, so a link down at the end still delivers."""
        reason = None if error is None else one_line(
            error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        )
        if reason is not None:
            event(logging.WARNING, "mesh.abort", party=self.party, reason=reason)
        sessions = list(self.peer_sessions.values())
        for link in self.links.values():
            if link.session is not None and link.session not in sessions:
                sessions.append(link.session)
        await asyncio.gather(*(s.close(reason=reason) for s in sessions),
                             return_exceptions=True)
        for task in self._redials.values():
            task.cancel()
        if self._server is not None:
            self._server.close()
        links = list(self.connections | set(self.links.values()))
        self.links = {}
        self.peer_sessions = {}
        self.connections = set()
        self._pending = {}
        await asyncio.gather(*(link.close(reason=reason) for link in links),
                             return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aexit__(self, *exc: object) -> None:
        """Leaving ``async with`` on an exception tells the peers why."""
        error = exc[1] if len(exc) > 1 else None
        await self.close(error if isinstance(error, BaseException) else None)


def _members(config: ClusterConfig, party: str, parties: Sequence[str] | None) -> list[str]:
    """The mesh's parties in cluster order: all of them, or the subset asked for."""
    if parties is None:
        return config.party_ids
    unknown = [p for p in parties if p not in config.party_ids]
    if unknown:
        raise ValueError(f"parties {unknown} are not in the cluster config "
                         f"(it has {config.party_ids})")
    if party not in parties:
        raise ValueError(f"this party {party!r} is not among the mesh's parties {list(parties)}")
    return [p for p in config.party_ids if p in parties]
