"""The threaded VOLE / OKVS kernels: every thread count gives the single-thread
result, and the receiver's table-driven noise compression equals compressing the
explicit regular noise vector (the form the receiver built before)."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc import _core
from meshmpc.crypto.prg import Prg
from meshmpc.ot.vole import CODE_KEY, WEIGHT, compress, compress_noise
from meshmpc.psi import okvs


def _compress(buf: np.ndarray, n: int, threads: int) -> np.ndarray:
    out = np.empty((n, *buf.shape[1:]), np.uint8)
    _core.ea_compress_into(CODE_KEY, buf.copy(), out, WEIGHT, nthreads=threads)
    return out


@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("big,n", [(300, 100), (1 << 17, 40_000), (200_003, 100_001)])
def test_ea_compression_same_for_every_thread_count(width: int, big: int, n: int) -> None:
    prg = Prg(b"\x11" * 16)
    buf = prg.blocks(big * width).reshape((big, 16) if width == 1 else (big, 2, 16))
    one = _compress(buf, n, 1)
    for threads in (2, 3, 7):
        assert np.array_equal(_compress(buf, n, threads), one)


@pytest.mark.parametrize("t,depth,n", [(1, 3, 5), (398, 4, 3000), (700, 9, 150_000)])
def test_noise_compression_equals_compressing_the_noise_vector(t: int, depth: int,
                                                               n: int) -> None:
    prg = Prg(b"\x12" * 16)
    alpha = (prg.uint64(t) % np.uint64(1 << depth)).astype(np.int64)
    alpha[0] = (1 << depth) - 1  # last row of a region: only that row and later see beta
    beta = prg.blocks(t)
    noise = np.zeros((t, 1 << depth, 16), np.uint8)
    noise[np.arange(t), alpha] = beta
    expected = compress(noise.reshape(-1, 16), n)
    assert np.array_equal(compress_noise(alpha, beta, depth, n), expected)
    for threads in (1, 3):
        out = np.empty((n, 16), np.uint8)
        _core.ea_compress_regular_into(CODE_KEY, alpha, beta, depth, out, WEIGHT,
                                       nthreads=threads)
        assert np.array_equal(out, expected)


def test_noise_compression_checks_positions() -> None:
    out = np.empty((10, 16), np.uint8)
    with pytest.raises(ValueError, match="outside its region"):
        _core.ea_compress_regular_into(CODE_KEY, np.array([0, 8], np.int64),
                                       np.zeros((2, 16), np.uint8), 3, out, WEIGHT)


@pytest.mark.parametrize("n", [1, 1000, 70_000])
def test_okvs_decode_same_for_every_thread_count(n: int) -> None:
    prg = Prg(b"\x13" * 16)
    keys, values = prg.blocks(n), prg.blocks(n)
    hashing, table = okvs.encode(keys, values)
    start, band = hashing.rows(keys)
    for threads in (1, 2, 5):
        out = np.empty((n, 16), np.uint8)
        _core.okvs_decode_into(start, band, table, out, threads)
        assert np.array_equal(out, values)
