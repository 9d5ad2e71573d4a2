"""Keyword PIR server: answers hint, OPRF and PIR requests over a Context.

Security model: semi-honest client and server, static corruption. The server
sees, per request, only: the request kind, the database version named, the
number of OPRF points (= number of distinct keys in the batch chunk) and a
query matrix whose shape depends on that number alone. Blinded OPRF points
are uniform group elements and query rows are LWE samples (or uniform
dummies), so found and not-found keys look the same. See protocols/pir.md.

Messages (client -> server under ``pir/req``, replies under ``pir/resp``; a
large array follows its header as a top-level message under ``pir/data``):

* ``{"op": "hint"}`` -> ``{"params": ...}`` + hint (rows x n, uint32)
* ``{"op": "oprf", "version"}`` + points (k x 32, uint8) -> ``{}`` + k * points
* ``{"op": "query", "version", "per_bucket": t}`` + Q (buckets * 2t x m,
  uint32) -> ``{"compute_ms"}`` + answers (buckets * 2t x rows_per_bucket)
* ``{"op": "close"}`` ends the session.

Any reply may instead be ``{"error": kind, "detail", "version"}``; the server
keeps serving after rejecting a malformed or stale request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from meshmpc.crypto.oprf import OprfError
from meshmpc.net import Context
from meshmpc.pir import lwe
from meshmpc.pir.errors import LookupRefused, PirProtocolError
from meshmpc.pir.rebuild import rebuild_database
from meshmpc.pir.table import PirDatabase

REQ, RESP, DATA = "pir/req", "pir/resp", "pir/data"


LookupGate = Callable[[str, int, dict[str, Any]], Awaitable[None]]
"""``await admit(client, keys, oprf_header)`` before a batch of ``keys`` lookups is
answered; raises :class:`LookupRefused` to refuse it (the node's grant caps:
:mod:`meshmpc.platform.lookups`)."""


class PirServer:
    """Holds the current database version; swap in a rebuilt one at any time.

    ``admit``, when given, is asked before each batch of keys is looked up (the
    OPRF request counts the batch's distinct keys); a refusal is answered as
    ``{"error": "refused", "detail"}`` and the session goes on.
    """

    def __init__(self, database: PirDatabase, admit: LookupGate | None = None) -> None:
        self._db = database
        self.admit = admit
        self.requests = 0
        self.last_compute_ms = 0.0

    @property
    def database(self) -> PirDatabase:
        return self._db

    def swap(self, database: PirDatabase) -> None:
        """Serve ``database`` from the next request on; in-flight requests finish."""
        self._db = database

    async def rebuild(
        self, keys: Sequence[bytes], records: Sequence[bytes] | None, record_bytes: int,
        key_name: str = "key",
    ) -> PirDatabase:
        """Build a new version in a worker thread while serving the old one, then swap.

        Few changes patch the current version in place of a copy (see
        :mod:`meshmpc.pir.rebuild`); many build a fresh layout, reusing the OPRF
        outputs of keys the current version has.
        """
        new = await asyncio.to_thread(rebuild_database, self._db, keys, records, record_bytes,
                                      key_name)
        self.swap(new)
        return new

    async def serve(self, ctx: Context, client: str,
                    on_request: Callable[[str, int], None] | None = None) -> int:
        """Answer ``client`` until it closes the session; returns requests served.

        ``on_request(op, keys)`` is told of each request answered: its kind and
        how many keys it carried (the OPRF points; 0 for other kinds), which the
        server sees anyway. The service's progress lines count with it.
        """
        served = 0
        while True:
            header = await ctx.recv(client, REQ)
            op = header.get("op") if isinstance(header, dict) else None
            op = op if isinstance(op, str) else None  # a peer's array must not reach ==
            if op == "close":
                return served
            keys = 0
            try:
                keys = await self._handle(ctx, client, op, header)
            except (PirProtocolError, OprfError) as exc:
                await ctx.send(client, RESP, {"error": "malformed", "detail": str(exc),
                                              "version": self._db.params.version})
            except LookupRefused as exc:
                await ctx.send(client, RESP, {"error": "refused", "detail": str(exc),
                                              "version": self._db.params.version})
            served += 1
            self.requests += 1
            if on_request is not None:
                on_request(str(op), keys)

    async def serve_all(self, ctx: Context, clients: Sequence[str]) -> dict[str, int]:
        """Serve several clients concurrently until each closes."""
        counts = await asyncio.gather(*(self.serve(ctx, c) for c in clients))
        return dict(zip(clients, counts, strict=True))

    async def _handle(self, ctx: Context, client: str, op: Any, header: dict[str, Any]) -> int:
        """Answer one request; returns the number of keys it carried (OPRF points)."""
        db = self._db
        if op == "hint":
            await ctx.send(client, RESP, {"params": db.params.to_wire()})
            await ctx.send(client, DATA, db.hint)
            return 0
        if op not in ("oprf", "query"):
            raise PirProtocolError(f"party {client!r} sent an unknown request {op!r}")
        data = await ctx.recv(client, DATA)
        version = header.get("version")
        if not isinstance(version, str) or version != db.params.version:
            await ctx.send(client, RESP, {"error": "stale", "detail": "database changed",
                                          "version": db.params.version})
            return 0
        if op == "oprf":
            points = _oprf_points(data, client)
            if self.admit is not None:
                await self.admit(client, len(points), header)
            evaluated = await asyncio.to_thread(db.oprf_key.evaluate_blinded_rows, points)
            await ctx.send(client, RESP, {})
            await ctx.send(client, DATA, evaluated)
            return len(points)
        start = time.perf_counter()
        answers = await asyncio.to_thread(answer_batch, db, data, header.get("per_bucket"),
                                          client)
        self.last_compute_ms = (time.perf_counter() - start) * 1e3
        await ctx.send(client, RESP, {"compute_ms": self.last_compute_ms})
        await ctx.send(client, DATA, answers)
        return 0


def _oprf_points(data: Any, client: str) -> np.ndarray:
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 32:
        raise PirProtocolError(f"party {client!r}: OPRF points must be a (k, 32) uint8 array")
    return np.ascontiguousarray(data)


def answer_batch(db: PirDatabase, queries: Any, per_bucket: Any, client: str) -> np.ndarray:
    """D_b * q for the 2t query rows of each bucket b; (buckets*2t, rows_per_bucket)."""
    p = db.params
    if not isinstance(per_bucket, int) or per_bucket < 1:
        raise PirProtocolError(f"party {client!r}: per_bucket must be a positive integer")
    want = (p.buckets * 2 * per_bucket, p.columns)
    if not isinstance(queries, np.ndarray) or queries.dtype != np.uint32 \
            or queries.shape != want:
        got = (getattr(queries, "dtype", type(queries).__name__), getattr(queries, "shape", ()))
        raise PirProtocolError(
            f"party {client!r}: query must be a uint32 array of shape {want}, got {got}"
        )
    queries = np.ascontiguousarray(queries)
    out = np.empty((want[0], p.rows_per_bucket), dtype=np.uint32)
    w = 2 * per_bucket
    for b in range(p.buckets):
        out[b * w : (b + 1) * w] = lwe.answer(db.bucket_rows(b), queries[b * w : (b + 1) * w])
    return out
