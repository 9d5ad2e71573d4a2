"""The TCP mesh: one authenticated, encrypted link between every pair of parties.

Each party listens on its configured address and dials every party listed
after it in the cluster config (so each pair has exactly one link). Dialing
retries with exponential backoff until ``connect_timeout_s``; a peer that
never shows up, or that fails authentication, stops :meth:`TcpMesh.start`
with an error naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from meshmpc.net.config import ClusterConfig, WanProfile
from meshmpc.net.errors import AuthenticationError, ConnectTimeoutError, NetworkError
from meshmpc.net.keys import IdentityKey
from meshmpc.net.link import Link
from meshmpc.net.mesh import Mesh

DEFAULT_MAX_MESSAGE = 1 << 36
DEFAULT_SPIN_S = float(os.environ.get("MESHMPC_SPIN_US", "150")) / 1e6
"""How long a waiting receive busy-polls before sleeping (see Mailbox)."""


class TcpMesh(Mesh):
    """A party's end of the real mesh. Use ``await TcpMesh.connect(...)``."""

    def __init__(
        self,
        config: ClusterConfig,
        party: str,
        identity: IdentityKey,
        wan: WanProfile | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
        spin_s: float = DEFAULT_SPIN_S,
    ) -> None:
        super().__init__(party, config.party_ids, spin_s)
        if identity.party != party:
            raise ValueError(f"identity key is for {identity.party!r}, not {party!r}")
        self.config = config
        self.identity = identity
        self.wan = wan if wan is not None else config.wan
        self.max_message_bytes = max_message_bytes
        self.links: dict[str, Link] = {}
        self._server: asyncio.AbstractServer | None = None
        self._ready: dict[str, asyncio.Future[Link]] = {}
        self._rejected: list[str] = []
        self.connections: set[Link] = set()

    @classmethod
    async def connect(
        cls, config: ClusterConfig, party: str, identity: IdentityKey, **kwargs: Any
    ) -> TcpMesh:
        """Listen, dial and authenticate every link; return once all are up."""
        mesh = cls(config, party, identity, **kwargs)
        try:
            await mesh.start()
        except BaseException:
            await mesh.close()
            raise
        return mesh

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = {p: loop.create_future() for p in self.peers}
        me = self.config.party(self.party)
        self._server = await loop.create_server(
            lambda: Link(self, dialer=False), host=me.host, port=me.port, reuse_address=True
        )
        deadline = loop.time() + self.config.connect_timeout_s
        later = self.parties[self.parties.index(self.party) + 1 :]
        dials = [asyncio.create_task(self._dial(p, deadline)) for p in later]
        try:
            await self._await_links(deadline)
        finally:
            for task in dials:
                task.cancel()
            await asyncio.gather(*dials, return_exceptions=True)

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
                missing = [p for p, f in self._ready.items() if not f.done()]
                extra = (
                    f"; rejected connections claiming {self._rejected}" if self._rejected else ""
                )
                raise ConnectTimeoutError(
                    ", ".join(missing),
                    f"never connected within {self.config.connect_timeout_s:g}s{extra}",
                )

    async def _dial(self, peer: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        target = self.config.party(peer)
        delay, attempts, last_error = 0.02, 0, ""
        while True:
            attempts += 1
            try:
                _, link = await loop.create_connection(
                    lambda: Link(self, dialer=True, expected_peer=peer), target.host, target.port
                )
                break
            except OSError as exc:
                last_error = str(exc)
            if loop.time() + delay > deadline:
                error = ConnectTimeoutError(
                    peer, f"no connection to {target.host}:{target.port} after {attempts} "
                    f"attempts in {self.config.connect_timeout_s:g}s (last error: {last_error})"
                )
                self._set_ready_error(peer, error)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        try:
            await link.ready
        except NetworkError as exc:
            self._set_ready_error(peer, exc)

    def _set_ready_error(self, peer: str, error: BaseException) -> None:
        fut = self._ready.get(peer)
        if fut is not None and not fut.done():
            fut.set_exception(error)

    def link_ready(self, link: Link) -> None:
        """Called by a link once authenticated in both directions."""
        assert link.peer is not None
        fut = self._ready.get(link.peer)
        if fut is None or fut.done():
            link._fail(AuthenticationError(link.peer, "duplicate connection for this party"))
            return
        self.links[link.peer] = link
        fut.set_result(link)

    def link_failed(self, link: Link, error: NetworkError) -> None:
        """Called by a link that failed; a handshake failure fails that peer's start."""
        if link.peer is None or link.peer not in self._ready:
            self._rejected.append(str(getattr(error, "peer", None)))
            return
        if self.links.get(link.peer) is link or not link.dialer:
            self._set_ready_error(link.peer, error)

    def _link(self, peer: str) -> Link:
        self._check_peer(peer)
        link = self.links.get(peer)
        if link is None:
            raise NetworkError(peer, "no link (mesh not started or already closed)")
        return link

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        await self._link(peer).send(tag, obj)

    async def flush(self) -> None:
        await asyncio.gather(*(link.flush() for link in self.links.values()))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        links = list(self.connections)
        self.links = {}
        self.connections = set()
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
