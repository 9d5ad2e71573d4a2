"""Sealed record payloads of PIR slots: AES-128-CTR with a per-slot random nonce.

payload = nonce (8 bytes, the first CTR counter block) || AES-128-CTR_{key, nonce}(
len16 || record || zero padding). The key comes from F(x) (see table.py), so
it is the same in every version that keeps x; the fresh nonce per sealing
keeps a record that changed between versions from reusing a keystream. All
rows are sealed in C (``_core.seal_rows_inplace``) on every core.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto import oprf
from meshmpc.crypto.hashing import _flatten
from meshmpc.pir.flat import as_arrow

LEN_BYTES = 2
NONCE_BYTES = 8


def _nonces(n: int) -> npt.NDArray[np.uint64]:
    return np.frombuffer(os.urandom(8 * n), dtype="<u8").astype(np.uint64)


def seal_all(seal_keys: npt.NDArray[np.uint8], records: Sequence[bytes] | None,
             record_bytes: int) -> npt.NDArray[np.uint8]:
    """nonce || sealed body of every record, (n, NONCE + LEN + record_bytes)."""
    n = len(seal_keys)
    if not record_bytes or records is None:
        return np.empty((n, 0), np.uint8)
    data, offsets = _flatten(as_arrow(records))
    bodies = np.empty((n, LEN_BYTES + record_bytes), np.uint8)
    if _core.pir_pack_bodies_into(data, offsets, bodies) >= 0:
        raise ValueError(f"a record is longer than record_bytes={record_bytes}")
    nonces = _nonces(n)
    _core.seal_rows_inplace(np.ascontiguousarray(seal_keys), nonces, bodies, oprf.threads())
    return np.concatenate([nonces.astype("<u8").view(np.uint8).reshape(n, NONCE_BYTES),
                           bodies], axis=1)


def seal(key: bytes, record: bytes, record_bytes: int) -> bytes:
    """One payload (empty in membership mode)."""
    if not record_bytes:
        return b""
    return seal_all(np.frombuffer(key, np.uint8).reshape(1, 16), [record],
                    record_bytes).tobytes()


def unseal(key: bytes, sealed: bytes) -> bytes:
    """Inverse of :func:`seal` (a labelled slot's payload to the record)."""
    start = np.frombuffer(sealed[:NONCE_BYTES], dtype="<u8").astype(np.uint64)
    row = np.frombuffer(sealed[NONCE_BYTES:], np.uint8).reshape(1, -1).copy()
    _core.seal_rows_inplace(np.frombuffer(key, np.uint8).reshape(1, 16), start, row)
    body = row.tobytes()
    length = int.from_bytes(body[:LEN_BYTES], "little")
    return body[LEN_BYTES : LEN_BYTES + length]
