"""Unbalanced PSI: a large server set preprocessed once, small clients pay per item.

Built on the 2HashDH OPRF of :mod:`meshmpc.crypto.oprf` (Jarecki-Kiayias-
Krawczyk-Xu 2016; the PSI use follows Kiss-Liu-Schneider-Asokan-Pinkas,
"Private Set Intersection for Unequal Set Sizes with Mobile Applications",
PETS 2017). The server S holds a long-term OPRF key k and its preprocessed set
T = shuffle({F_k(y)[:16]}), cached on disk with k, sealed under the party's vault
(mode 0600), and reused for every client and query until its input changes; the
client's copy of T is cached sealed likewise.

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
import contextlib
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from meshmpc import _core
from meshmpc.crypto import oprf
from meshmpc.data.vault import Vault, VaultError, default_vault_dir
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
CACHE_SUFFIX = ".sealed"
"""Caches are sealed streams (:mod:`meshmpc.data.sealedfile`); older ``.npz`` caches held
the OPRF key in clear and are deleted when seen."""
log = logging.getLogger(__name__)


def cache_vault(party: str) -> Vault:
    """The vault a run given none seals its caches with: the party's local vault key."""
    return Vault.open_or_create(default_vault_dir() / f"{party}.vault")


def save_cache(path: Path, vault: Vault, arrays: dict[str, np.ndarray]) -> None:
    """Seal ``arrays`` (and the table format) into ``path``, streamed, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    items = {"format": np.frombuffer(CACHE_FORMAT.encode(), np.uint8), **arrays}
    try:
        with vault.sealed_scratch(tmp, f"psi-unbalanced/{path.name}").writer() as fh:
            npformat.write_array(fh, np.array([len(items)], np.int64))
            for name, array in items.items():
                npformat.write_array(fh, np.frombuffer(name.encode(), np.uint8))
                npformat.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_cache(path: Path, vault: Vault) -> dict[str, np.ndarray] | None:
    """A cache :func:`save_cache` wrote, or None (logged) when it is missing or unusable:
    of another format, sealed under another key, or altered."""
    _drop_unsealed(path.with_suffix(".npz"))
    if not path.exists():
        return None
    try:
        with vault.sealed_scratch(path, f"psi-unbalanced/{path.name}").reader() as fh:
            count = int(npformat.read_array(fh)[0])
            arrays = {bytes(npformat.read_array(fh)).decode():
                      npformat.read_array(fh, allow_pickle=False) for _ in range(count)}
    except (VaultError, ValueError, OSError) as exc:
        log.warning("unbalanced PSI: ignoring the cached table %s (%s); rebuilding it",
                    path, exc)
        return None
    found = bytes(arrays.pop("format", np.empty(0, np.uint8))).decode(errors="replace")
    if found != CACHE_FORMAT:
        log.warning("unbalanced PSI: ignoring the cached table %s: it was built with format "
                    "%r, this version uses %r; rebuilding it", path, found, CACHE_FORMAT)
        return None
    return arrays


def _drop_unsealed(old: Path) -> None:
    """Delete a cache an older version wrote in clear (it may hold the OPRF key)."""
    if old.exists():
        log.warning("unbalanced PSI: deleting %s, a cache written in clear by an older "
                    "version; it is rebuilt sealed", old)
        old.unlink()


def preprocess(digests: Digests, cache_dir: Path, vault: Vault, workers: int | None = None,
               phase: Phase | None = None) -> dict[str, np.ndarray]:
    """The server's key, shuffle and OPRF table for ``digests``, cached in ``cache_dir``
    sealed under ``vault``.

    A cache of another table format or key is rejected (logged) and rebuilt.
    ``phase`` counts the OPRF evaluations, batch by batch (rate and ETA).
    """
    path = cache_dir / f"unbalanced-{_set_fingerprint(digests)}{CACHE_SUFFIX}"
    cached = load_cache(path, vault)
    if cached is not None and {"key", "perm", "table", "set_id"} <= cached.keys():
        return cached
    key = oprf.OprfKey.generate()
    perm = random_permutation(len(digests))
    table = _oprf_table(key, np.ascontiguousarray(digests[perm]), phase)
    set_id = np.frombuffer(hashlib.blake2b(CACHE_FORMAT.encode() + table.tobytes(),
                                           digest_size=16).digest(), np.uint8)
    state: dict[str, np.ndarray] = {
        "key": np.frombuffer(key.scalar, np.uint8), "perm": perm, "table": table,
        "set_id": set_id,
    }
    save_cache(path, vault, state)
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
                            progress: Progress | None = None,
                            vault: Vault | None = None) -> PsiOutcome:
    """Server side: answers the client's blinded points; sends T when the client lacks it.

    The preprocessed state (key, shuffle, table) is cached sealed under ``vault``
    (default: this party's local vault, :func:`cache_vault`).
    """
    vault = vault or cache_vault(ctx.party)
    phase = (progress or Progress.off()).phase("unbalanced: OPRF table of the server's set",
                                               len(digests), "keys")
    state = await asyncio.to_thread(preprocess, digests, cache_dir, vault, workers, phase)
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
    return cache_dir / f"unbalanced-table-{peer}{CACHE_SUFFIX}"


async def _client_table(ctx: Context, peer: str, cache_dir: Path, vault: Vault) -> np.ndarray:
    path = _client_cache(cache_dir, peer)
    cached = await asyncio.to_thread(load_cache, path, vault)
    cached_id, table = b"", None
    if cached is not None and {"set_id", "table"} <= cached.keys():
        cached_id, table = cached["set_id"].tobytes(), cached["table"]
    await ctx.send(peer, "ub/have", cached_id)
    set_id = _set_id(await ctx.recv(peer, "ub/id"), peer, empty_ok=False)
    if set_id != cached_id or table is None:
        table = await ctx.recv(peer, "ub/table")
        if not isinstance(table, np.ndarray) or table.dtype != np.uint8 or table.ndim != 2 \
                or table.shape[1] != VALUE_BYTES:
            raise PsiError(f"party {peer} sent an OPRF table that is not rows of "
                           f"{VALUE_BYTES} bytes")
        await asyncio.to_thread(save_cache, path, vault,
                                {"set_id": np.frombuffer(set_id, np.uint8), "table": table})
    return table.reshape(-1, VALUE_BYTES)


async def unbalanced_client(ctx: Context, peer: str, digests: Digests, reveal: Reveal,
                            cache_dir: Path, vault: Vault | None = None) -> PsiOutcome:
    """Client side: OPRF on its own items, matched against the server's table (cached
    sealed under ``vault``, default this party's local vault)."""
    table = await _client_table(ctx, peer, cache_dir, vault or cache_vault(ctx.party))
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
