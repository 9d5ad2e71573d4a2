"""Unbalanced PSI: a large server set preprocessed once, small clients pay per item.

Built on the 2HashDH OPRF of :mod:`meshmpc.crypto.oprf` (Jarecki-Kiayias-
Krawczyk-Xu 2016; the PSI use follows Kiss-Liu-Schneider-Asokan-Pinkas,
"Private Set Intersection for Unequal Set Sizes with Mobile Applications",
PETS 2017). The server S holds a long-term OPRF key k and its preprocessed set
T = shuffle({F_k(y)[:16]}), cached on disk with k (mode 0600) and reused for
every client and query until its input changes.

Per query (client C = the receiver, with n_C items):
  C -> S: the id of the copy of T it has cached, if any        (16 bytes)
  S -> C: the id of T, and T itself unless C's copy is current  (16 bytes per item, once)
  C -> S: r * H1(x) for each x                                  (32 bytes per item)
  S -> C: k * r * H1(x)                                         (32 bytes per item)
  C: F_k(x) = H2(x, r^-1 k r H1(x)); matches against T.
  (reveal="all") C -> S: positions of the matches in T, in canonical order.
Semi-honest security under one-more-gap-DH in the random-oracle model. C learns
the intersection and |Y|; S learns n_C (and the intersection with reveal="all").
C's cost: 2 n_C scalar multiplications; S's: n_C per query plus |Y| once.
See protocols/psi-unbalanced.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from meshmpc import _core
from meshmpc.crypto import oprf
from meshmpc.net import Context
from meshmpc.progress import Phase, Progress
from meshmpc.psi.common import (
    PsiOutcome,
    Reveal,
    canonical_order,
    random_permutation,
    received_positions,
)
from meshmpc.psi.errors import PsiError
from meshmpc.psi.keys import Digests

VALUE_BYTES = 16
OPRF_BATCH = 1 << 14
"""Server items per OPRF batch (the progress display ticks between batches)."""


def _set_fingerprint(digests: Digests) -> str:
    return hashlib.blake2b(np.ascontiguousarray(digests).tobytes(), digest_size=16).hexdigest()


CACHE_FORMAT = f"unbalanced-2:{oprf.FORMAT}:{VALUE_BYTES}"
"""Recorded in every cached table; a cache of another format is never used."""
log = logging.getLogger(__name__)


def _format_array() -> np.ndarray:
    return np.frombuffer(CACHE_FORMAT.encode(), np.uint8)


def cache_format(cached: Any) -> str:
    """The format a cached .npz records ("unversioned" before formats existed)."""
    if "format" not in cached.files:
        return "unversioned"
    return bytes(cached["format"]).decode(errors="replace")


def _load_server_cache(path: Path) -> dict[str, np.ndarray] | None:
    with np.load(path) as cached:
        found = cache_format(cached)
        if found == CACHE_FORMAT:
            return {k: cached[k] for k in cached.files}
    log.warning("unbalanced PSI: ignoring the cached table %s: it was built with format %r, "
                "this version uses %r; rebuilding it", path, found, CACHE_FORMAT)
    return None


def preprocess(digests: Digests, cache_dir: Path, workers: int | None = None,
               phase: Phase | None = None) -> dict[str, np.ndarray]:
    """The server's key, shuffle and OPRF table for ``digests``, cached in ``cache_dir``.

    A cache written by another table format is rejected (logged) and rebuilt.
    ``phase`` counts the OPRF evaluations, batch by batch (rate and ETA).
    """
    path = cache_dir / f"unbalanced-{_set_fingerprint(digests)}.npz"
    if path.exists() and (cached := _load_server_cache(path)) is not None:
        return cached
    key = oprf.OprfKey.generate()
    perm = random_permutation(len(digests))
    table = _oprf_table(key, np.ascontiguousarray(digests[perm]), phase)
    set_id = np.frombuffer(hashlib.blake2b(CACHE_FORMAT.encode() + table.tobytes(),
                                           digest_size=16).digest(), np.uint8)
    state: dict[str, np.ndarray] = {
        "key": np.frombuffer(key.scalar, np.uint8), "perm": perm, "table": table,
        "set_id": set_id, "format": _format_array(),
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{path.name}.{os.getpid()}.npz"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, key=state["key"], perm=perm, table=table, set_id=set_id,
                 format=state["format"])
    os.replace(tmp, path)
    return state


def _oprf_table(key: oprf.OprfKey, items: Digests, phase: Phase | None) -> np.ndarray:
    """F(x) truncated to VALUE_BYTES for every item, in batches that tick ``phase``."""
    phase = phase or Progress.off().phase("", None)
    table = np.empty((len(items), VALUE_BYTES), np.uint8)
    with phase:
        for start in range(0, len(items), OPRF_BATCH):
            part = items[start : start + OPRF_BATCH]
            table[start : start + len(part)] = key.evaluate_rows(part)[:, :VALUE_BYTES]
            phase.advance(len(part))
    return table


async def unbalanced_server(ctx: Context, peer: str, digests: Digests, reveal: Reveal,
                            cache_dir: Path, workers: int | None,
                            progress: Progress | None = None) -> PsiOutcome:
    """Server side: answers the client's blinded points; sends T when the client lacks it."""
    phase = (progress or Progress.off()).phase("unbalanced: OPRF table of the server's set",
                                               len(digests), "keys")
    state = await asyncio.to_thread(preprocess, digests, cache_dir, workers, phase)
    client_has = _set_id(await ctx.recv(peer, "ub/have"), peer, empty_ok=True)
    set_id = state["set_id"].tobytes()
    await ctx.send(peer, "ub/id", set_id)
    if client_has != set_id:
        await ctx.send(peer, "ub/table", np.ascontiguousarray(state["table"]))
    blob = await ctx.recv(peer, "ub/blinded")
    if not isinstance(blob, bytes) or len(blob) % oprf.POINT_BYTES:
        raise PsiError(f"party {peer} sent blinded points that are not 32-byte elements")
    points = np.frombuffer(blob, np.uint8).reshape(-1, oprf.POINT_BYTES)
    key = oprf.OprfKey(state["key"].tobytes())
    answer = await asyncio.to_thread(key.evaluate_blinded_rows, points)
    await ctx.send(peer, "ub/evaluated", answer.tobytes())
    if reveal != "all":
        return PsiOutcome(None, None, len(points))
    positions = received_positions(await ctx.recv(peer, "ub/result"), len(digests), peer)
    return PsiOutcome(state["perm"][positions], len(positions), len(points))


def _set_id(obj: object, peer: str, empty_ok: bool) -> bytes:
    """A set fingerprint received from ``peer`` (empty: the client has no cached table)."""
    if not isinstance(obj, bytes) or len(obj) > 64 or (not obj and not empty_ok):
        raise PsiError(f"party {peer} sent a set fingerprint that is not 1-64 bytes")
    return obj


def _client_cache(cache_dir: Path, peer: str) -> Path:
    return cache_dir / f"unbalanced-table-{peer}.npz"


async def _client_table(ctx: Context, peer: str, cache_dir: Path) -> np.ndarray:
    path = _client_cache(cache_dir, peer)
    cached_id, table = b"", None
    if path.exists():
        with np.load(path) as c:
            if cache_format(c) == CACHE_FORMAT:
                cached_id, table = c["set_id"].tobytes(), c["table"]
            else:
                log.warning("unbalanced PSI: ignoring the cached table %s of format %r "
                            "(this version uses %r); fetching it again from %s",
                            path, cache_format(c), CACHE_FORMAT, peer)
    await ctx.send(peer, "ub/have", cached_id)
    set_id = _set_id(await ctx.recv(peer, "ub/id"), peer, empty_ok=False)
    if set_id != cached_id or table is None:
        table = await ctx.recv(peer, "ub/table")
        if not isinstance(table, np.ndarray) or table.dtype != np.uint8 or table.ndim != 2 \
                or table.shape[1] != VALUE_BYTES:
            raise PsiError(f"party {peer} sent an OPRF table that is not rows of "
                           f"{VALUE_BYTES} bytes")
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(path, set_id=np.frombuffer(set_id, np.uint8), table=table,
                 format=_format_array())
    return table.reshape(-1, VALUE_BYTES)


async def unbalanced_client(ctx: Context, peer: str, digests: Digests, reveal: Reveal,
                            cache_dir: Path) -> PsiOutcome:
    """Client side: OPRF on its own items, matched against the server's table."""
    table = await _client_table(ctx, peer, cache_dir)
    batch = await asyncio.to_thread(oprf.blind, [bytes(d) for d in digests])
    await ctx.send(peer, "ub/blinded", b"".join(batch.points))
    evaluated = await ctx.recv(peer, "ub/evaluated")
    if not isinstance(evaluated, bytes) or len(evaluated) != oprf.POINT_BYTES * len(digests):
        raise PsiError(f"party {peer} answered with other than {len(digests)} group elements "
                       "of 32 bytes")
    rows = np.frombuffer(evaluated, np.uint8).reshape(-1, oprf.POINT_BYTES)
    outputs = await asyncio.to_thread(oprf.finalize, batch, rows)
    mine = np.frombuffer(b"".join(v[:VALUE_BYTES] for v in outputs), np.uint8)
    mine = mine.reshape(-1, VALUE_BYTES)
    where = _core.psi_match(mine, table) if len(mine) else np.empty(0, np.int64)
    hits = np.flatnonzero(where >= 0).astype(np.int64)
    hits = hits[canonical_order(mine[hits])]
    if reveal == "all":
        await ctx.send(peer, "ub/result", where[hits])
    return PsiOutcome(hits, len(hits), len(table))
