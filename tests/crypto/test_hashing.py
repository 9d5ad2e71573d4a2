"""Correlation-robust hashes against their definitions; item hash against hashlib."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.crypto import FIXED_KEY_AES, ccr_hash, item_hash, tccr_hash
from meshmpc.crypto.aes import available_paths
from meshmpc.crypto.errors import KernelInputError

PATHS = available_paths()


def sigma(x: np.ndarray) -> np.ndarray:
    lo, hi = x[:, :8], x[:, 8:]
    return np.hstack([hi, lo ^ hi])


def tweaks(start: int, n: int) -> np.ndarray:
    raw = b"".join((start + i).to_bytes(16, "little") for i in range(n))
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, 16)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 100])
def test_ccr_hash_definition(path: int, n: int) -> None:
    x = np.random.default_rng(n).integers(0, 256, (n, 16), np.uint8)
    s = sigma(x)
    expected = FIXED_KEY_AES.encrypt(s, path=0) ^ s
    assert np.array_equal(ccr_hash(x, path=path), expected)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 100])
def test_tccr_hash_definition(path: int, n: int) -> None:
    x = np.random.default_rng(n).integers(0, 256, (n, 16), np.uint8)
    y = FIXED_KEY_AES.encrypt(x, path=0)
    expected = FIXED_KEY_AES.encrypt(y ^ tweaks(77, n), path=0) ^ y
    assert np.array_equal(tccr_hash(x, 77, path=path), expected)


def test_tccr_tweak_changes_output() -> None:
    x = np.zeros((4, 16), np.uint8)
    out = tccr_hash(x, 0)
    assert len({row.tobytes() for row in out}) == 4


def blake(item: bytes, key: bytes = b"", person: bytes = b"meshmpc.item.v1") -> bytes:
    return hashlib.blake2b(item, digest_size=16, key=key, person=person).digest()


def test_item_hash_matches_hashlib_for_lists() -> None:
    items = [b"", b"a", "91350100M000100Y4X", b"\x00" * 300]
    got = item_hash(items)
    assert [row.tobytes() for row in got] == [blake(x.encode() if isinstance(x, str) else x)
                                             for x in items]
    keyed = item_hash(items[:2], key=b"k" * 32, domain=b"psi")
    assert keyed[1].tobytes() == blake(b"a", key=b"k" * 32, person=b"psi")


def test_item_hash_arrow_and_numpy_inputs() -> None:
    keys = [f"id-{i}" for i in range(1000)]
    arrow = pa.array(keys)
    assert np.array_equal(item_hash(arrow.slice(10, 50)), item_hash(keys[10:60]))
    assert np.array_equal(item_hash(pa.array(keys, pa.large_binary())), item_hash(keys))
    fixed = np.frombuffer(b"".join(k.encode().ljust(8, b"_") for k in keys), np.uint8)
    fixed = fixed.reshape(1000, 8)
    assert item_hash(fixed)[3].tobytes() == blake(b"id-3____")
    assert item_hash([]).shape == (0, 16)


def test_item_hash_rejects_bad_inputs() -> None:
    with pytest.raises(KernelInputError, match="null"):
        item_hash(pa.array(["a", None]))
    with pytest.raises(KernelInputError, match="domain"):
        item_hash([b"a"], domain=b"x" * 17)
    with pytest.raises(KernelInputError, match="2-D uint8"):
        item_hash(np.zeros(4, np.int32))
