"""Run one party of a protocol against fuzzed peer messages (PSI and PIR targets).

A fuzz input is ``scenario byte`` + a msgpack stream of ``[peer, tag, obj]``
items: everything the other parties "send". :class:`ScriptMesh` hands them out
by (peer, tag) in order, exactly as the mailbox would after the codec decoded
them, and drops what this party sends. When the script runs out the run
ends (:class:`Exhausted`). Seeds are the real transcripts of an honest run over
the in-memory mesh (:func:`record`), so mutation starts from valid messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from meshmpc.net import codec
from meshmpc.net.context import Context
from meshmpc.net.errors import MalformedMessageError
from meshmpc.net.memory import MemoryMesh
from meshmpc.net.mesh import Mesh

LOOP = asyncio.new_event_loop()
MAX_SECONDS = 5.0  # one input of a few KiB must never keep a party busy longer


class Exhausted(Exception):
    """The script has no (more) message for a receive: the peer went quiet."""


class ScriptMesh(Mesh):
    """A mesh whose peers say only what the fuzz input scripts."""

    def __init__(self, party: str, parties: list[str], items: list[tuple[str, str, Any]]) -> None:
        super().__init__(party, parties)
        self.items = items

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        self._check_peer(peer)

    async def recv(self, peer: str, tag: str) -> Any:
        for i, (who, what, obj) in enumerate(self.items):
            if who == peer and what == tag:
                del self.items[i]
                return obj
        raise Exhausted(f"{peer}/{tag}")

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


def script(data: bytes) -> list[tuple[str, str, Any]] | None:
    """The ``[peer, tag, obj]`` items of a fuzz input; None when it is not such a stream."""
    try:
        raw = list(codec.unpack_stream(data))
    except MalformedMessageError:
        return None
    items = [tuple(i) for i in raw if isinstance(i, list) and len(i) == 3
             and isinstance(i[0], str) and isinstance(i[1], str)]
    return items if len(items) == len(raw) else None  # type: ignore[return-value]


def encode(items: list[tuple[str, str, Any]]) -> bytes:
    return b"".join(codec.pack([p, t, o]) for p, t, o in items)


def play(party: str, parties: list[str], items: list[tuple[str, str, Any]],
         fn: Callable[[Context], Awaitable[Any]], documented: tuple[type[BaseException], ...]
         ) -> Any:
    """Run ``fn`` as ``party`` on the script; documented errors and running dry are fine."""
    ctx = Context(ScriptMesh(party, parties, items))
    try:
        return LOOP.run_until_complete(asyncio.wait_for(fn(ctx), MAX_SECONDS))
    except (Exhausted, *documented):
        return None
    except TimeoutError as exc:
        raise AssertionError("a few KiB of peer input kept the party busy for seconds") from exc


def record(parties: list[str], fns: dict[str, Callable[[Context], Awaitable[Any]]]
           ) -> dict[str, list[tuple[str, str, Any]]]:
    """An honest in-memory run: what each party received, in order."""
    meshes = MemoryMesh.group(parties)
    got: dict[str, list[tuple[str, str, Any]]] = {p: [] for p in parties}
    for p, mesh in meshes.items():
        inner = mesh.mailbox.deliver

        def deliver(peer: str, tag: str, obj: Any, _inner: Any = inner,
                    _log: list[tuple[str, str, Any]] = got[p]) -> None:
            _log.append((peer, tag, obj))
            _inner(peer, tag, obj)

        mesh.mailbox.deliver = deliver  # type: ignore[method-assign]

    async def main() -> None:
        await asyncio.gather(*(fns[p](Context(meshes[p])) for p in parties))

    LOOP.run_until_complete(main())
    return got
