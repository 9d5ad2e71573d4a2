"""The mesh interface both transports implement (TCP and in-memory)."""

from __future__ import annotations

import abc
from typing import Any

from meshmpc.errors import note_stage
from meshmpc.net.errors import NetworkError
from meshmpc.net.mailbox import Mailbox
from meshmpc.net.stats import LinkStats


class Mesh(abc.ABC):
    """One party's end of a full mesh: ordered send/receive per (peer, tag).

    Messages from one peer under one tag arrive in the order they were sent.
    Implementations count traffic per link in :attr:`stats`.
    """

    def __init__(self, party: str, parties: list[str], spin_s: float = 0.0) -> None:
        if party not in parties:
            raise ValueError(f"party {party!r} is not one of {parties}")
        if len(set(parties)) != len(parties):
            raise ValueError(f"party ids must be unique: {parties}")
        self.party = party
        self.parties = list(parties)
        self.peers = [p for p in parties if p != party]
        self.mailbox = Mailbox(spin_s)
        self.stats: dict[str, LinkStats] = {p: LinkStats() for p in self.peers}

    def _check_peer(self, peer: str) -> None:
        if peer not in self.stats:
            raise ValueError(f"{self.party}: unknown peer {peer!r}; peers are {self.peers}")

    @abc.abstractmethod
    async def send(self, peer: str, tag: str, obj: Any) -> None:
        """Send ``obj`` to ``peer`` under ``tag``; returns once it is queued for the wire."""

    async def recv(self, peer: str, tag: str) -> Any:
        """Receive the next object ``peer`` sent under ``tag``."""
        self._check_peer(peer)
        try:
            return await self.mailbox.get(peer, tag)
        except NetworkError as exc:
            note_stage(exc, "wait", f"waiting for {tag!r} from {peer}")
            raise

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until everything sent so far has been handed to the transport."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and close every link (idempotent)."""

    async def __aenter__(self) -> Mesh:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SubgroupMesh(Mesh):
    """A view of ``base`` restricted to some of its parties (same links and mailbox)."""

    def __init__(self, base: Mesh, parties: list[str]) -> None:
        unknown = [p for p in parties if p not in base.parties]
        if unknown:
            raise ValueError(f"{base.party}: {unknown} are not in the mesh {base.parties}")
        ordered = [p for p in base.parties if p in parties]
        super().__init__(base.party, ordered)
        self.base = base
        self.mailbox = base.mailbox
        self.stats = {p: base.stats[p] for p in self.peers}

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        self._check_peer(peer)
        await self.base.send(peer, tag, obj)

    async def flush(self) -> None:
        await self.base.flush()

    async def close(self) -> None:
        """Closing a view leaves the underlying mesh open."""
