"""OPRF outputs of a database version, kept so a rebuild reuses them.

F(x) depends only on the key x and the server's OPRF key, not on the record,
so a rebuild with the same OPRF key needs the (costly) OPRF only for keys the
previous version did not have. Outputs are indexed by a 16-byte BLAKE2b of
the key (sorted, binary-searched): about 48 bytes per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meshmpc.crypto.hashing import item_hash
from meshmpc.crypto.oprf import OprfKey

_DOMAIN = b"meshmpc-pir-key"


def key_digests(keys: Sequence[bytes]) -> npt.NDArray[np.void]:
    """(n,) 16-byte digests of the keys, as a sortable fixed-width dtype."""
    return np.ascontiguousarray(item_hash(keys, domain=_DOMAIN)).view("V16").reshape(-1)


def record_digests(records: Sequence[bytes] | None, n: int) -> npt.NDArray[np.void]:
    """(n,) 16-byte digests of the records (zeros in membership mode)."""
    if records is None:
        return np.zeros((n, 16), np.uint8).view("V16").reshape(-1)
    return np.ascontiguousarray(item_hash(records, domain=b"meshmpc-pir-rec")).view(
        "V16").reshape(-1)


@dataclass
class PrfCache:
    """F(x) for the keys of one version, sorted by key digest."""

    digests: npt.NDArray[np.void]
    outputs: npt.NDArray[np.uint8]

    @classmethod
    def of(cls, digests: npt.NDArray[np.void], outputs: npt.NDArray[np.uint8]) -> PrfCache:
        order = np.argsort(digests, kind="stable")
        return cls(digests[order], outputs[order])

    def lookup(self, digests: npt.NDArray[np.void]) -> tuple[npt.NDArray[np.bool_],
                                                           npt.NDArray[np.int64]]:
        """(found, index into outputs) for each digest."""
        if not len(self.digests):
            return np.zeros(len(digests), bool), np.zeros(len(digests), np.int64)
        at = np.searchsorted(self.digests, digests).astype(np.int64)
        clipped = np.minimum(at, len(self.digests) - 1)
        return self.digests[clipped] == digests, clipped


def prf_outputs(key: OprfKey, keys: Sequence[bytes], digests: npt.NDArray[np.void],
                previous: PrfCache | None) -> tuple[npt.NDArray[np.uint8], PrfCache, int]:
    """F(x) of every key (reusing ``previous``), the new cache, and how many were computed.

    ``digests`` are :func:`key_digests` of ``keys``.
    """
    out = np.empty((len(keys), 32), np.uint8)
    if previous is None:
        missing = np.arange(len(keys))
    else:
        found, at = previous.lookup(digests)
        out[found] = previous.outputs[at[found]]
        missing = np.flatnonzero(~found)
    if len(missing):
        out[missing] = key.evaluate_rows([keys[int(i)] for i in missing])
    return out, PrfCache.of(digests, out), len(missing)
