"""Incremental rebuild of a PIR database: patch the slots that changed.

A new version of a risk list usually differs from the last in a few records.
Rebuilding from scratch re-runs the OPRF on every key and recomputes the hint
D A (10^11 multiply-adds at 2^20 records). Here the new version keeps the
OPRF key, salt, LWE seed and geometry of the previous one; only the slots of
added, changed and removed records (and of records a cuckoo insertion moves)
are rewritten, and the hint is patched entry by entry:
H[r] += (D'[r, c] - D[r, c]) A[c] (``_core.pir_hint_update``).

What it reveals beyond a fresh build: anyone holding the hints of both
versions can locate the rewritten slots (so count the changed records); a
client that knows F(x) for some key x (it queried x before) can tell whether
x's record changed without asking again. Records sealed again get a fresh
nonce, so no keystream is reused. When more than ``max_changed`` of the
records differ, or placement fails, it falls back to a full build with a
fresh layout (:func:`meshmpc.pir.table.build_database`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.prg import Prg
from meshmpc.pir import lwe
from meshmpc.pir.prfcache import key_digests, match_digests, prf_outputs, record_digests
from meshmpc.pir.sealing import seal_all
from meshmpc.pir.table import (
    TAG_BYTES,
    Layout,
    PirDatabase,
    build_database,
    check_records,
    check_same_format,
    key_bytes,
    materials,
    place,
    records_fit,
)

MAX_KICKS = 2000
I64 = npt.NDArray[np.int64]


def rebuild_database(previous: PirDatabase, keys: Sequence[bytes],
                     records: Sequence[bytes] | None, record_bytes: int, key_name: str = "key",
                     max_changed: float = 0.1) -> PirDatabase:
    """The next version of ``previous`` holding exactly ``keys`` -> ``records``."""
    keys = keys if all(type(k) is bytes for k in keys) else [key_bytes(k) for k in keys]
    rec = records if record_bytes else None
    digests = key_digests(keys)
    if not records_fit(digests, rec, record_bytes, len(keys)):
        check_records(keys, rec, record_bytes, key_name)  # names the offending rows
    check_same_format(previous)
    old = previous.layout
    if old is None or record_bytes != previous.params.record_bytes:
        return build_database(keys, records, record_bytes, key_name, previous=previous)
    rdigests = record_digests(rec, len(keys))
    old_of_new = match_digests(old.digests, digests)
    kept = old_of_new >= 0
    same = kept.copy()
    same[kept] = old.records[old_of_new[kept]] == rdigests[kept]
    removed = len(old.digests) - int(kept.sum())
    if (len(keys) - int(same.sum()) + removed) > max_changed * max(len(keys), 1):
        return build_database(keys, records, record_bytes, key_name, previous=previous)
    prf, cache, _ = prf_outputs(previous.oprf_key, keys, digests, previous.prf_cache)
    params = replace(previous.params, version=os.urandom(8).hex(),
                     n_records=len(keys))
    mats = materials(prf, params.salt)
    pos = place(mats, params.buckets, params.columns)
    g1 = pos.bucket * params.columns + pos.col1
    g2 = pos.bucket * params.columns + pos.col2
    new_of_old = np.full(len(old.digests), -1, np.int64)
    new_of_old[old_of_new[kept]] = np.flatnonzero(kept)
    table = np.where(old.table >= 0, new_of_old[np.maximum(old.table, 0)], -1)
    dirty = set(np.flatnonzero((old.table >= 0) & (table < 0)).tolist())  # removed
    dirty.update(np.flatnonzero(table >= 0)[~same[table[table >= 0]]].tolist())  # changed
    if not _insert(table, np.flatnonzero(~kept), g1, g2, params.slots, dirty):
        return build_database(keys, records, record_bytes, key_name, previous=previous)
    db, hint = _patch(previous, table, np.array(sorted(dirty), np.int64), mats, rec)
    return PirDatabase(params, db, hint, previous.oprf_key, cache,
                       Layout(table, digests, rdigests))


def _insert(table: I64, items: I64, g1: I64, g2: I64, cap: int, dirty: set[int]) -> bool:
    """Cuckoo-insert ``items`` into ``table`` (bins of ``cap`` slots); note touched slots."""
    walk = 0x9E3779B97F4A7C15  # deterministic victim choice: the layout is public
    bins = table.reshape(-1, cap)
    for item in items.tolist():
        if _put(bins, item, int(g1[item]), dirty) or _put(bins, item, int(g2[item]), dirty):
            continue
        cur, b = item, int(g1[item])
        for _ in range(MAX_KICKS):
            walk = (walk * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            j = (walk >> 33) % cap
            victim = int(bins[b, j])
            bins[b, j] = cur
            dirty.add(b * cap + j)
            cur = victim
            b = int(g2[cur]) if int(g1[cur]) == b else int(g1[cur])
            if _put(bins, cur, b, dirty):
                break
        else:
            return False
    return True


def _put(bins: np.ndarray, item: int, b: int, dirty: set[int]) -> bool:
    free = np.flatnonzero(bins[b] < 0)
    if not len(free):
        return False
    bins[b, free[0]] = item
    dirty.add(b * bins.shape[1] + int(free[0]))
    return True


def _patch(previous: PirDatabase, table: I64, slots: I64,
           mats: np.ndarray, records: Sequence[bytes] | None) -> tuple[np.ndarray, np.ndarray]:
    """Copy D and H, rewrite the dirty slots, patch H by the differences."""
    p = previous.params
    size, s, m = p.slot_bytes, p.slots, p.columns
    db, hint = previous.db.copy(), previous.hint.copy()
    items = table[slots]
    content = Prg().fill(np.empty((len(slots), size), np.uint8))  # free slots: fresh noise
    full = np.flatnonzero(items >= 0)
    if len(full):
        which = items[full]
        sealed = seal_all(np.ascontiguousarray(mats[which, 20:36]),
                          [records[i] for i in which] if records is not None else None,
                          p.record_bytes)
        content[full] = np.concatenate([mats[which, 12 : 12 + TAG_BYTES], sealed], axis=1)
    bins, j = slots // s, slots % s
    rows = ((bins // m) * p.rows_per_bucket + j * size)[:, None] + np.arange(size)
    cols = np.broadcast_to((bins % m)[:, None], rows.shape)
    delta = content.astype(np.int32) - db[rows, cols].astype(np.int32)
    db[rows, cols] = content
    nz = delta != 0
    a = lwe.expand_matrix(p.seed, m, lwe.LWE_N)
    _core.pir_hint_update(hint, a, np.ascontiguousarray(rows[nz], dtype=np.int64),
                          np.ascontiguousarray(cols[nz], dtype=np.int64),
                          np.ascontiguousarray(delta[nz]), lwe.threads())
    return db, hint
