"""The OKVS kernels of RR22 against numpy references, and its failure behaviour:
the sorted decode equals a plain XOR over the band, repeated keys with one value
encode, an encoding failure is retried with a fresh seed and, when every seed
fails, ends the run with an error instead of a wrong intersection."""

from __future__ import annotations

import os

import numpy as np
import pytest

from meshmpc import _core
from meshmpc.crypto.hashing import item_hash
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.psi import okvs
from meshmpc.psi.rr22 import match_order, rr22_receiver, rr22_sender


def blocks(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), np.uint8).reshape(n, 16).copy()


def decode_reference(start: np.ndarray, band: np.ndarray, table: np.ndarray) -> np.ndarray:
    """XOR of table[start + k] over the set bits k of band, in numpy."""
    bits = np.unpackbits(band, axis=1, bitorder="little").astype(bool)  # (n, 128)
    windows = table.view(np.uint64).reshape(-1, 2)[start.astype(np.int64)[:, None]
                                                   + np.arange(128)[None, :]]  # (n, 128, 2)
    picked = np.where(bits[:, :, None], windows, np.uint64(0))
    return np.bitwise_xor.reduce(picked, axis=1).view(np.uint8).reshape(-1, 16)


@pytest.mark.parametrize("n", [10, 1 << 16, 100_003])  # 2^16 and up take the sorted path
def test_decode_equals_numpy_reference(n: int) -> None:
    m = okvs.table_size(n)
    hashing = okvs.OkvsHash(os.urandom(16), m)
    keys, table = blocks(n), blocks(m)
    start, band = hashing.rows(keys)
    got = np.empty((n, 16), np.uint8)
    _core.okvs_decode_into(start, band, table, got, 2)
    check = np.unique(np.r_[0, n - 1, np.random.default_rng(n).integers(0, n, 3000)])
    assert np.array_equal(got[check], decode_reference(start[check], band[check], table))


def test_repeated_keys_with_the_same_value_encode() -> None:
    keys, values = blocks(5000), blocks(5000)
    keys[100:200], values[100:200] = keys[:100], values[:100]
    keys[4999], values[4999] = keys[7], values[7]
    hashing, table = okvs.encode(keys, values)
    assert np.array_equal(hashing.decode(table, keys), values)


def test_failed_encoding_retries_with_a_fresh_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    real, seeds = _core.okvs_encode_into, []
    rows = okvs.OkvsHash.rows

    def spy_rows(self: okvs.OkvsHash, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seeds.append(self.seed)
        return rows(self, keys)

    def fail_twice(*args: object) -> bool:
        return False if len(seeds) <= 2 else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(okvs.OkvsHash, "rows", spy_rows)
    monkeypatch.setattr(okvs._core, "okvs_encode_into", fail_twice)
    keys, values = blocks(3000), blocks(3000)
    hashing, table = okvs.encode(keys, values)
    assert len(seeds) == 3 and len(set(seeds)) == 3 and hashing.seed == seeds[-1]
    assert np.array_equal(hashing.decode(table, keys), values)


def _psi(ctx: Context, r: np.ndarray, s: np.ndarray) -> object:
    peer = "s" if ctx.party == "r" else "r"
    if ctx.party == "r":
        return rr22_receiver(ctx, peer, r, len(s), "all")
    return rr22_sender(ctx, peer, s, len(r), "all")


def _sets() -> tuple[np.ndarray, np.ndarray, set[bytes]]:
    r = item_hash([f"r{i}" for i in range(4000)])
    s = item_hash([f"r{i}" for i in range(0, 8000, 2)])
    return r, s, {bytes(x) for x in r[:4000:2]}


def test_rr22_after_encoding_retries_finds_the_plaintext_intersection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = _core.okvs_encode_into, []

    def flaky(*args: object) -> bool:
        calls.append(1)
        return False if len(calls) <= 3 else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(okvs._core, "okvs_encode_into", flaky)
    r, s, want = _sets()
    out = run_parties(["r", "s"], _psi, r, s)
    assert len(calls) == 4
    got = {bytes(r[i]) for i in out["r"].matched}
    assert got == want and len(out["r"].matched) == len(want)
    assert [bytes(s[i]) for i in out["s"].matched] == [bytes(r[i]) for i in out["r"].matched]


def test_rr22_encoding_that_always_fails_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(okvs._core, "okvs_encode_into", lambda *args: False)
    r, s, _ = _sets()
    with pytest.raises(okvs.OkvsError, match="failed 8 times"):
        run_parties(["r", "s"], _psi, r, s)


def test_match_order_sorts_by_the_first_64_bits() -> None:
    values = blocks(10_000)[:, :9].copy()
    order = match_order(values)
    heads = [values[i, :8].tobytes() for i in order]
    assert heads == sorted(heads) and sorted(order.tolist()) == list(range(10_000))
    assert len(match_order(values[:0])) == 0
