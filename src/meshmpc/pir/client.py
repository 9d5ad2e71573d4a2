"""Keyword PIR client: holds the hint, runs OPRF + SimplePIR rounds per batch.

A batch of keys costs two round trips: the OPRF (blinded points out, k * points
back) and the PIR query (one matrix out, one back). The query matrix has
``buckets * 2t`` rows, with t = :func:`~meshmpc.pir.table.bucket_capacity` of
the batch size, so its shape - like everything else the server sees - depends
only on how many distinct keys were asked, never on which or whether found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meshmpc.crypto.prg import Prg
from meshmpc.net import Context
from meshmpc.pir import lwe
from meshmpc.pir import oprf25519 as oprf
from meshmpc.pir.errors import LookupRefused, PirProtocolError, StaleHintError
from meshmpc.pir.sealing import unseal
from meshmpc.pir.server import DATA, REQ, RESP
from meshmpc.pir.table import PirParams, bucket_capacity, key_bytes, materials, place
from meshmpc.progress import Progress

MAX_CHUNK = 1024  # keys per round; larger batches run several rounds


@dataclass(frozen=True)
class Hit:
    """The answer for one key: found or not, and its record (labelled mode)."""

    key: bytes
    found: bool
    record: bytes | None


class _Stale(Exception):
    def __init__(self, version: str) -> None:
        self.version = version


class PirClient:
    """One client's session with one server party."""

    def __init__(self, ctx: Context, server: str, progress: Progress | None = None) -> None:
        self.ctx = ctx
        self.server = server
        self.progress = progress or Progress.off()
        self.params: PirParams | None = None
        self.hint: np.ndarray | None = None
        self._a: np.ndarray | None = None
        self.last_compute_ms = 0.0
        self.request_fields: dict[str, Any] = {}
        """Sent with each batch (e.g. ``purpose`` and ``consent`` for the server's gate)."""
        self.batch_fields: Callable[[list[bytes]], dict[str, Any]] | None = None
        """Fields of one batch from its keys (e.g. the consent of those keys only); added
        to ``request_fields``. Raising here stops the query before that batch is sent."""
        self.chunk = MAX_CHUNK
        """Keys per batch (each batch is admitted whole or refused by a gated server)."""
        self._fields: dict[str, Any] = {}

    async def refresh(self) -> PirParams:
        """Offline phase: download parameters and hint, expand A from its seed."""
        self.progress.stage(f"downloading the database hint from {self.server}")
        await self.ctx.send(self.server, REQ, {"op": "hint"})
        reply = await self._reply()
        params = PirParams.from_wire(reply.get("params"), self.server)
        hint = await self.ctx.recv(self.server, DATA)
        if not isinstance(hint, np.ndarray) or hint.dtype != np.uint32 \
                or hint.shape != (params.rows, params.lwe_n):
            raise PirProtocolError(f"party {self.server!r} sent a hint of the wrong shape")
        self.params, self.hint = params, hint
        self._a = lwe.expand_matrix(params.seed, params.columns, params.lwe_n)
        self.progress.stage(f"hint of {params.n_records:,} records (version {params.version}, "
                            f"{hint.nbytes / 2**20:,.1f} MiB)")
        return params

    def adopt(self, other: PirClient) -> None:
        """Use ``other``'s parameters, hint and A (another session with the same server):
        parallel sessions then hold one copy and download the hint once. A later
        refresh of either client replaces its own references only (never in place)."""
        if other.server != self.server or other.params is None:
            raise ValueError(f"adopt: the other session is not a refreshed session with "
                             f"{self.server!r}")
        self.params, self.hint, self._a = other.params, other.hint, other._a

    async def close(self) -> None:
        await self.ctx.send(self.server, REQ, {"op": "close"})

    async def query(self, keys: Iterable[object], auto_refresh: bool = True) -> list[Hit]:
        """Look up ``keys`` (duplicates allowed); one :class:`Hit` per key, in order."""
        wanted = [key_bytes(k) for k in keys]
        unique = list(dict.fromkeys(wanted))
        found: dict[bytes, Hit] = {}
        with self.progress.phase(f"looking up keys at {self.server}", len(unique),
                                 "keys") as phase:
            step = max(1, min(self.chunk, MAX_CHUNK))
            for lo in range(0, len(unique), step):
                chunk = unique[lo : lo + step]
                for hit in await self._query_chunk(chunk, auto_refresh):
                    found[hit.key] = hit
                phase.advance(len(chunk))
        return [found[k] for k in wanted]

    async def _query_chunk(self, keys: list[bytes], auto_refresh: bool) -> list[Hit]:
        self._fields = {**self.request_fields,
                        **(self.batch_fields(keys) if self.batch_fields else {})}
        if self.params is None:
            await self.refresh()
        try:
            return await self._lookup(keys)
        except _Stale as stale:
            if not auto_refresh:
                assert self.params is not None
                raise StaleHintError(self.server, self.params.version, stale.version) from None
            await self.refresh()
            return await self._lookup(keys)

    async def _lookup(self, keys: list[bytes]) -> list[Hit]:
        assert self.params is not None
        params = self.params
        prf = await self._oprf(keys)
        mats = materials(np.frombuffer(b"".join(prf), np.uint8).reshape(len(keys), 32),
                         params.salt)
        pos = place(mats, params.buckets, params.columns)
        per_bucket = bucket_capacity(len(keys), params.buckets)
        counts = np.bincount(pos.bucket, minlength=params.buckets)
        if counts.max(initial=0) > per_bucket:  # probability <= 2^-40: split the batch
            half = len(keys) // 2
            return await self._lookup(keys[:half]) + await self._lookup(keys[half:])
        rows, columns = _assign(pos.bucket, pos.col1, pos.col2, params.buckets, per_bucket)
        assert self._a is not None
        secrets, queries = lwe.make_queries(self._a, columns, Prg())
        await self._send(
            {"op": "query", "version": params.version, "per_bucket": per_bucket}, queries
        )
        reply = await self._reply()
        self.last_compute_ms = float(reply.get("compute_ms", 0.0))
        answers = await self._array((len(columns), params.rows_per_bucket))
        digits = self._decode(answers, secrets, rows, pos.bucket)
        return [
            _open(keys[i], digits[2 * i], digits[2 * i + 1], pos.tags[i], pos.keys[i], params)
            for i in range(len(keys))
        ]

    async def _oprf(self, keys: list[bytes]) -> list[bytes]:
        assert self.params is not None
        batch = oprf.blind(keys)
        await self._send({**self._fields, "op": "oprf", "version": self.params.version},
                         batch.points)
        await self._reply()
        evaluated = await self._array((len(keys), 32), np.uint8)
        return oprf.finalize(batch, evaluated)

    def _decode(self, answers: np.ndarray, secrets: np.ndarray, rows: np.ndarray,
                bucket: np.ndarray) -> np.ndarray:
        """Digits of each key's two columns: (2 * keys, rows_per_bucket)."""
        assert self.params is not None and self.hint is not None
        out = np.empty((len(rows), self.params.rows_per_bucket), np.uint8)
        r = self.params.rows_per_bucket
        for b in np.unique(bucket):
            mine = np.flatnonzero(np.repeat(bucket, 2) == b)
            out[mine] = lwe.decode(answers[rows[mine]], self.hint[b * r : (b + 1) * r],
                                   secrets[rows[mine]])
        return out

    async def _send(self, header: dict[str, Any], data: np.ndarray) -> None:
        await self.ctx.send(self.server, REQ, header)
        await self.ctx.send(self.server, DATA, data)

    async def _reply(self) -> dict[str, Any]:
        reply = await self.ctx.recv(self.server, RESP)
        if not isinstance(reply, dict):
            raise PirProtocolError(f"party {self.server!r} sent a reply that is not a mapping")
        if reply.get("error") == "stale":
            raise _Stale(str(reply.get("version")))
        if reply.get("error") == "refused":
            raise LookupRefused(f"party {self.server!r} refused the lookups: "
                                f"{reply.get('detail')}")
        if "error" in reply:
            raise PirProtocolError(
                f"party {self.server!r} rejected the request: {reply.get('detail')}"
            )
        return reply

    async def _array(self, shape: tuple[int, ...], dtype: type = np.uint32) -> np.ndarray:
        data = await self.ctx.recv(self.server, DATA)
        if not isinstance(data, np.ndarray) or data.shape != shape or data.dtype != dtype:
            raise PirProtocolError(
                f"party {self.server!r} sent {getattr(data, 'shape', type(data).__name__)}, "
                f"expected a {np.dtype(dtype).name} array of shape {shape}"
            )
        return data


def _assign(bucket: np.ndarray, col1: np.ndarray, col2: np.ndarray, buckets: int,
            per_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """Query rows for each key's two columns, and the column read by every row.

    Row b * 2t + 2i (+1) reads key i-of-bucket-b's first (second) column; rows
    no key uses stay -1 (dummies). Returns (rows: 2 * keys, columns: rows).
    """
    columns = np.full(buckets * 2 * per_bucket, -1, dtype=np.int64)
    order = np.argsort(bucket, kind="stable")
    rank = np.empty(len(bucket), np.int64)
    starts = np.searchsorted(bucket[order], np.arange(buckets))
    rank[order] = np.arange(len(bucket)) - starts[bucket[order]]
    first = bucket * 2 * per_bucket + 2 * rank
    rows = np.stack([first, first + 1], axis=1).reshape(-1)
    columns[first], columns[first + 1] = col1, col2
    return rows, columns


def _open(key: bytes, col_a: np.ndarray, col_b: np.ndarray, tag: np.ndarray, seal_key: np.ndarray,
          params: PirParams) -> Hit:
    """Find the tag among both columns' slots; decrypt the record if labelled."""
    size = params.slot_bytes
    for col in (col_a, col_b):
        slots = col.reshape(params.slots, size)
        match = np.flatnonzero((slots[:, : len(tag)] == tag).all(axis=1))
        if len(match):
            sealed = slots[match[0], len(tag) :].tobytes()
            record = unseal(seal_key.tobytes(), sealed) if params.record_bytes else None
            return Hit(key, True, record)
    return Hit(key, False, None)


async def query_keys(ctx: Context, server: str, keys: Sequence[object]) -> list[Hit]:
    """One-shot helper: download the hint, look up ``keys``, close the session."""
    client = PirClient(ctx, server)
    try:
        return await client.query(keys)
    finally:
        await client.close()
