"""The Context handed explicitly to protocol code: who I am, the mesh, randomness.

There is no module-global runtime: every protocol function takes a Context.
``ctx.scope(name)`` gives a view whose tags are prefixed, so that concurrent
protocol instances (two PSIs, a PSI beside a triple generator) never see each
other's messages.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from meshmpc.net.mesh import Mesh, SubgroupMesh
from meshmpc.net.stats import LinkStats, total


class Context:
    """A party's handle on the joint computation.

    Attributes: ``party`` (this party's id), ``parties`` (all ids, in cluster
    order), ``peers`` (the others), ``index`` (this party's position),
    ``mesh`` and ``config`` (the cluster config, or None in memory).
    """

    def __init__(self, mesh: Mesh, config: Any = None, prefix: str = "") -> None:
        self.mesh = mesh
        self.config = config
        self.prefix = prefix

    @property
    def party(self) -> str:
        return self.mesh.party

    @property
    def parties(self) -> list[str]:
        return self.mesh.parties

    @property
    def peers(self) -> list[str]:
        return self.mesh.peers

    @property
    def index(self) -> int:
        return self.mesh.parties.index(self.mesh.party)

    def subgroup(self, parties: list[str]) -> Context:
        """A Context over only ``parties`` (this party among them), e.g. the
        compute parties of a suite while other parties only provide inputs.
        Messages still travel on the same links; tags are not changed."""
        return Context(SubgroupMesh(self.mesh, parties), self.config, self.prefix)

    def scope(self, name: str) -> Context:
        """A Context whose tags live under ``name`` (nested scopes compose)."""
        return Context(self.mesh, self.config, f"{self.prefix}{name}/")

    def _tag(self, tag: str) -> str:
        return self.prefix + tag

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        """Send ``obj`` (msgpack-able, numpy arrays anywhere) to ``peer`` under ``tag``."""
        await self.mesh.send(peer, self._tag(tag), obj)

    async def recv(self, peer: str, tag: str) -> Any:
        """Receive the next object ``peer`` sent under ``tag``."""
        return await self.mesh.recv(peer, self._tag(tag))

    async def broadcast(self, tag: str, obj: Any) -> None:
        """Send the same object to every peer."""
        await asyncio.gather(*(self.send(p, tag, obj) for p in self.peers))

    async def recv_all(self, tag: str) -> dict[str, Any]:
        """Receive one object under ``tag`` from every peer."""
        values = await asyncio.gather(*(self.recv(p, tag) for p in self.peers))
        return dict(zip(self.peers, values, strict=True))

    async def exchange(self, peer: str, tag: str, obj: Any) -> Any:
        """Send to ``peer`` and receive its message under the same tag."""
        await self.send(peer, tag, obj)
        return await self.recv(peer, tag)

    async def barrier(self, name: str = "barrier") -> None:
        """Wait until every party has reached this barrier."""
        await self.broadcast(f"__barrier__/{name}", None)
        await self.recv_all(f"__barrier__/{name}")

    @staticmethod
    def random_seed(nbytes: int = 16) -> bytes:
        """Fresh seed from the OS for the C PRG (the only source of protocol randomness)."""
        return os.urandom(nbytes)

    def stats(self) -> dict[str, LinkStats]:
        """Per-peer traffic counters of this party's links."""
        return self.mesh.stats

    def traffic(self) -> LinkStats:
        """This party's traffic summed over its links."""
        return total(self.mesh.stats)
