"""Recorded views of ECDH-style PSI runs, and what a party can deduce from them.

A *view* is every message a party receives (recorded in the in-memory mesh's
mailbox) plus its own inputs and secret scalars. The analysis closes the
view under what a curious party can compute (hash-and-exponentiate its own
items by its scalars, exponentiate any received point by its scalars) and
decodes every value with the ground truth (all parties' items and scalars),
so a test can ask: which of party Q's rows can party P tell apart by
membership, i.e. for which rows does P hold a value linked to that row (an
array in Q's row order) equal to a value in another array of its view?
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshmpc.net import Context
from meshmpc.net.memory import MemoryMesh
from meshmpc.psi import group

current_party: contextvars.ContextVar[str] = contextvars.ContextVar("current_party")


@dataclass
class Views:
    """What every party received, and the scalars each drew (in order)."""

    received: dict[str, list[tuple[str, str, Any]]] = field(default_factory=dict)
    scalars: dict[str, list[bytes]] = field(default_factory=dict)


def recording_scalar(views: Views) -> Callable[[], bytes]:
    """A new_scalar replacement that remembers which party drew which scalar."""

    def draw() -> bytes:
        s = group.new_scalar()
        views.scalars.setdefault(current_party.get(), []).append(s)
        return s

    return draw


def run_recorded(parties: list[str], fn: Callable[[Context], Awaitable[Any]],
                 views: Views) -> dict[str, Any]:
    """Run ``fn`` for every party over an in-memory mesh, recording each mailbox."""
    meshes = MemoryMesh.group(parties)
    for p, mesh in meshes.items():
        log = views.received.setdefault(p, [])
        inner = mesh.mailbox.deliver

        def deliver(peer: str, tag: str, obj: Any, _inner: Any = inner, _log: Any = log) -> None:
            _log.append((peer, tag, obj))
            _inner(peer, tag, obj)

        mesh.mailbox.deliver = deliver  # type: ignore[method-assign]

    async def one(party: str) -> Any:
        current_party.set(party)
        try:
            return await fn(Context(meshes[party]))
        except BaseException as exc:
            meshes[party].fail_peers(party, f"party {party} failed: {exc!r}")
            raise

    async def main() -> list[Any]:
        return await asyncio.gather(*(one(p) for p in parties))

    return dict(zip(parties, asyncio.run(main()), strict=True))


def _rows(obj: Any) -> np.ndarray | None:
    arr = np.asarray(obj) if isinstance(obj, np.ndarray | bytes) else None
    if arr is None:
        return None
    if arr.dtype != np.uint8:
        return None
    if arr.ndim == 1:
        return arr.reshape(-1, 32) if arr.size % 32 == 0 and arr.size else None
    return arr if arr.ndim == 2 and arr.shape[0] else None


class Decoder:
    """Ground truth: which item (owner, row) and scalar subset a value encodes."""

    def __init__(self, sets: dict[str, np.ndarray], scalar_sets: list[list[bytes]]) -> None:
        self.sets = sets
        self.table: dict[bytes, bytes] = {}  # full value -> digest
        digests = {bytes(d) for rows in sets.values() for d in rows}
        subsets: set[tuple[bytes, ...]] = set()
        for pool in scalar_sets:
            for r in range(len(pool) + 1):
                subsets.update(itertools.combinations(pool, r))
        for d in digests:
            base = group.hash_to_points(d)
            for sub in subsets:
                value = base
                for s in sub:
                    value = group.exponentiate(s, value)
                self.table[value] = d

    def item(self, row: bytes) -> bytes | None:
        """The digest whose value starts with ``row`` (None if unknown)."""
        if len(row) == 32:
            return self.table.get(row)
        for value, d in self.table.items():
            if value.startswith(row):
                return d
        return None


def linked_owner(rows: np.ndarray, decoder: Decoder) -> str | None:
    """The party whose rows this array lists in that party's input order, if any."""
    items = [decoder.item(bytes(r)) for r in rows]
    for owner, digests in decoder.sets.items():
        if len(digests) == len(rows) and all(
            it == bytes(d) for it, d in zip(items, digests, strict=True)
        ):
            return owner
    return None


def distinguishable_rows(party: str, views: Views, sets: dict[str, np.ndarray],
                         decoder: Decoder) -> dict[str, set[int]]:
    """For each owner Q: Q's rows whose membership ``party`` can test from its view."""
    arrays = [rows for _, _, obj in views.received.get(party, [])
              if (rows := _rows(obj)) is not None]
    mine = np.ascontiguousarray(sets[party])
    for s in views.scalars.get(party, []):
        arrays.append(np.frombuffer(group.hash_and_exponentiate(s, mine.tobytes()),
                                    np.uint8).reshape(-1, 32))
        for rows in list(arrays):
            if rows.shape[1] == 32:
                arrays.append(np.frombuffer(group.exponentiate(s, rows.tobytes()),
                                            np.uint8).reshape(-1, 32))
    owners = [linked_owner(a, decoder) for a in arrays]
    found: dict[str, set[int]] = {}
    for i, (a, owner) in enumerate(zip(arrays, owners, strict=True)):
        if owner is None:
            continue
        for j, (b, other) in enumerate(zip(arrays, owners, strict=True)):
            if i == j or other == owner:
                continue
            w = min(a.shape[1], b.shape[1])
            against = {bytes(r[:w]) for r in b}
            hits = {k for k, r in enumerate(a) if bytes(r[:w]) in against}
            if hits:
                found.setdefault(owner, set()).update(hits)
    return found
