"""The PIR server's recorded view is independent of the keys asked (found or not).

Every message the server receives is recorded in its mailbox. For different
key sets (all present, all absent, mixed) the view has the same tags and
shapes; the OPRF points are fresh group elements (the same key asked twice
gives unrelated points); the LWE query entries look uniform: a distinguisher
that counts entries near 0 (what an unmasked selection vector would show)
sees the same for every key set.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from meshmpc.net import Context
from meshmpc.net.memory import MemoryMesh
from meshmpc.pir.client import PirClient
from meshmpc.pir.server import PirServer
from meshmpc.pir.table import build_database

KEYS = [b"9131%06d" % i for i in range(300)]


@pytest.fixture(scope="module")
def db() -> Any:
    return build_database(KEYS, [b"r%d" % i for i in range(300)], 16, buckets=2)


def _server_view(db: Any, batches: list[list[bytes]]) -> list[tuple[str, Any]]:
    meshes = MemoryMesh.group(["fin", "bank"])
    seen: list[tuple[str, Any]] = []
    inner = meshes["fin"].mailbox.deliver

    def deliver(peer: str, tag: str, obj: Any) -> None:
        seen.append((tag, obj))
        inner(peer, tag, obj)

    meshes["fin"].mailbox.deliver = deliver  # type: ignore[method-assign]

    async def client(ctx: Context) -> None:
        c = PirClient(ctx, "fin")
        for keys in batches:
            hits = await c.query(keys)
            assert [h.found for h in hits] == [k in KEYS for k in keys]
        await c.close()

    async def main() -> None:
        await asyncio.gather(PirServer(db).serve(Context(meshes["fin"]), "bank"),
                             client(Context(meshes["bank"])))

    asyncio.run(main())
    return seen


def _shape(view: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    for tag, obj in view:
        if isinstance(obj, np.ndarray):
            out.append((tag, obj.shape, obj.dtype.str))
        elif isinstance(obj, dict):
            out.append((tag, tuple(sorted((k, v) for k, v in obj.items() if k != "version"))))
        else:
            out.append((tag, type(obj).__name__))
    return out


def _arrays(view: list[tuple[str, Any]], dtype: str) -> list[np.ndarray]:
    return [o for _, o in view if isinstance(o, np.ndarray) and o.dtype == np.dtype(dtype)]


def test_server_view_same_for_found_absent_and_mixed(db: Any) -> None:
    sets = {"found": [KEYS[5], KEYS[77]], "absent": [b"nope", b"nada"],
            "mixed": [KEYS[200], b"zzz"]}
    views = {name: _server_view(db, [keys]) for name, keys in sets.items()}
    shapes = {name: _shape(v) for name, v in views.items()}
    assert shapes["found"] == shapes["absent"] == shapes["mixed"]
    for view in views.values():
        for q in _arrays(view, "<u4"):  # LWE queries: no entry stands out as small
            centred = q.astype(np.int64)
            centred = np.minimum(centred, (1 << 32) - centred)
            assert np.mean(centred < (1 << 20)) < 0.01


def test_oprf_points_are_fresh_for_the_same_key(db: Any) -> None:
    view = _server_view(db, [[KEYS[9]], [KEYS[9]], [b"absent"]])
    points = [p.tobytes() for p in _arrays(view, "|u1")]
    assert len(points) == 3 and len(set(points)) == 3
    bits = np.unpackbits(np.frombuffer(b"".join(points), np.uint8)).mean()
    assert 0.3 < bits < 0.7
