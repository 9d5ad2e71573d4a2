"""OPRF outputs of a database version, kept so a rebuild reuses them.

F(x) depends only on the key x and the server's OPRF key, not on the record,
so a rebuild with the same OPRF key needs the (costly) OPRF only for keys the
previous version did not have. Outputs are indexed by a 16-byte BLAKE2b of
the key (sorted, binary-searched): about 48 bytes per key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meshmpc.crypto.hashing import item_hash
from meshmpc.pir.flat import as_arrow
from meshmpc.pir.oprf25519 import PirOprfKey

_DOMAIN = b"meshmpc-pir-key"
PRF_BATCH = 1 << 14
"""Keys per OPRF batch when progress is shown."""


def key_digests(keys: Sequence[bytes]) -> npt.NDArray[np.void]:
    """(n,) 16-byte digests of the keys, as a sortable fixed-width dtype."""
    return np.ascontiguousarray(item_hash(as_arrow(keys), domain=_DOMAIN)).view("V16").reshape(-1)


def record_digests(records: Sequence[bytes] | None, n: int) -> npt.NDArray[np.void]:
    """(n,) 16-byte digests of the records (zeros in membership mode)."""
    if records is None:
        return np.zeros((n, 16), np.uint8).view("V16").reshape(-1)
    return np.ascontiguousarray(item_hash(as_arrow(records), domain=b"meshmpc-pir-rec")).view(
        "V16").reshape(-1)


def _prefix(digests: npt.NDArray[np.void]) -> npt.NDArray[np.uint64]:
    """The first 8 bytes of each digest as an integer: sorts and searches fast."""
    return np.ascontiguousarray(digests).view(np.uint64).reshape(-1, 2)[:, 0]


def match_digests(haystack: npt.NDArray[np.void], needles: npt.NDArray[np.void],
                  presorted: bool = False) -> npt.NDArray[np.int64]:
    """Index of each needle in ``haystack`` (-1 when absent), by 8-byte prefix then the
    full 16 bytes (a prefix shared by two keys only costs a needless recomputation)."""
    if not len(haystack):
        return np.full(len(needles), -1, np.int64)
    keys = _prefix(haystack)
    order = np.arange(len(keys)) if presorted else np.argsort(keys, kind="stable")
    at = np.minimum(np.searchsorted(keys[order], _prefix(needles)), len(keys) - 1)
    where = order[at]
    return np.where(haystack[where] == needles, where, -1).astype(np.int64)


@dataclass
class PrfCache:
    """F(x) for the keys of one version, sorted by key digest."""

    digests: npt.NDArray[np.void]
    outputs: npt.NDArray[np.uint8]

    @classmethod
    def of(cls, digests: npt.NDArray[np.void], outputs: npt.NDArray[np.uint8]) -> PrfCache:
        order = np.argsort(_prefix(digests), kind="stable")
        return cls(digests[order], outputs[order])

    def lookup(self, digests: npt.NDArray[np.void]) -> tuple[npt.NDArray[np.bool_],
                                                           npt.NDArray[np.int64]]:
        """(found, index into outputs) for each digest."""
        at = match_digests(self.digests, digests, presorted=True)
        return at >= 0, np.maximum(at, 0)


def prf_outputs(key: PirOprfKey, keys: Sequence[bytes], digests: npt.NDArray[np.void],
                previous: PrfCache | None, tick: Callable[[int], None] | None = None,
                ) -> tuple[npt.NDArray[np.uint8], PrfCache, int]:
    """F(x) of every key (reusing ``previous``), the new cache, and how many were computed.

    ``digests`` are :func:`key_digests` of ``keys``. With ``tick`` the OPRF runs
    in batches of :data:`PRF_BATCH` keys and ``tick`` is told each batch's size
    (a progress display: rate and time left).
    """
    out = np.empty((len(keys), 32), np.uint8)
    if previous is None:
        missing = np.arange(len(keys))
    else:
        found, at = previous.lookup(digests)
        out[found] = previous.outputs[at[found]]
        missing = np.flatnonzero(~found)
    step = PRF_BATCH if tick is not None else max(len(missing), 1)
    every = len(missing) == len(keys)  # a fresh build: slice the keys, no per-key indexing
    for start in range(0, len(missing), step):
        part = missing[start : start + step]
        out[part] = key.evaluate_rows(keys[start : start + step] if every
                                      else [keys[int(i)] for i in part])
        if tick is not None:
            tick(len(part))
    return out, PrfCache.of(digests, out), len(missing)
