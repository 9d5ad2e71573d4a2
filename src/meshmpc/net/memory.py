"""An in-memory mesh with the same API as the TCP mesh, for tests and in-process runs.

All parties live in one process and one event loop. Messages go through the
same codec as on the wire (so a test catches objects that cannot travel), and
traffic is counted as encoded bytes. When one party's coroutine fails, the
others see a :class:`PeerDisconnectedError` from it instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from meshmpc.net import codec
from meshmpc.net.context import Context
from meshmpc.net.errors import PeerDisconnectedError
from meshmpc.net.eventloop import run as run_loop
from meshmpc.net.mesh import Mesh

T = TypeVar("T")


class MemoryMesh(Mesh):
    """One party's endpoint of an in-process mesh; create the group with :meth:`group`."""

    def __init__(self, party: str, parties: list[str], hub: dict[str, MemoryMesh]) -> None:
        super().__init__(party, parties)
        self._hub = hub
        self._closed = False

    @classmethod
    def group(cls, parties: list[str]) -> dict[str, MemoryMesh]:
        """Endpoints for every party, connected to each other."""
        hub: dict[str, MemoryMesh] = {}
        for p in parties:
            hub[p] = cls(p, parties, hub)
        return hub

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        self._check_peer(peer)
        if self._closed:
            raise PeerDisconnectedError(peer, f"{self.party} has closed its mesh")
        if codec.is_raw_array(obj):
            wire_bytes = codec.encoded_size(obj)
            delivered: Any = np.array(obj, copy=True, order="C")
        else:
            data = codec.pack(obj)
            wire_bytes = len(data)
            delivered = codec.unpack(data)
        self.stats[peer].on_send(wire_bytes)
        target = self._hub[peer]
        target.stats[self.party].on_receive(wire_bytes, 1)
        target.mailbox.deliver(self.party, tag, delivered)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        self._closed = True

    def fail_peers(self, error_party: str, reason: str) -> None:
        """Tell every other endpoint that ``error_party`` is gone."""
        for p, mesh in self._hub.items():
            if p != error_party:
                mesh.mailbox.fail(error_party, PeerDisconnectedError(error_party, reason))


async def gather_parties(
    parties: list[str], fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> dict[str, T]:
    """Run ``fn(ctx, *args, **kwargs)`` for every party over one in-memory mesh."""
    meshes = MemoryMesh.group(parties)

    async def one(party: str) -> T:
        try:
            return await fn(Context(meshes[party]), *args, **kwargs)
        except BaseException as exc:
            meshes[party].fail_peers(party, f"party {party} failed: {exc!r}")
            raise

    results = await asyncio.gather(*(one(p) for p in parties))
    return dict(zip(parties, results, strict=True))


def run_parties(
    parties: list[str],
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    loop: str | None = None,
    **kwargs: Any,
) -> dict[str, T]:
    """Synchronous helper: run ``fn`` for each party in memory and return their results."""
    return run_loop(gather_parties(parties, fn, *args, **kwargs), loop=loop)
