"""Correlated randomness: the relations hold once shares are combined, for the
dealer and the OT-based provider, on 2 and 3 parties."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from meshmpc.mpc.circuits import unslice_plane
from meshmpc.mpc.errors import UnsupportedOperationError
from meshmpc.mpc.factory import make_provider
from meshmpc.mpc.ring import RING64, RING128
from meshmpc.net import run_parties
from meshmpc.net.context import Context


async def correlations(ctx: Context, source: str) -> dict[str, Any]:
    provider = make_provider(ctx, source)
    await provider.setup()
    return {
        "arith": await provider.arith_triples(RING64, (3, 33)),
        "matrix": await provider.matrix_triples(RING64, (5, 3), (3, 4)),
        "and": await provider.and_triples((2, 9)),
        "dabits": await provider.dabits(RING64, 130),
    }


def combine(results: dict[str, Any], key: str, index: int, xor: bool = False) -> np.ndarray:
    parts = [r[key][index] for r in results.values()]
    return functools.reduce(np.bitwise_xor if xor else np.add, parts)


@pytest.mark.parametrize("source", ["dealer", "ot"])
@pytest.mark.parametrize("count", [2, 3])
def test_correlations_hold(source: str, count: int) -> None:
    out = run_parties(["p0", "p1", "p2"][:count], correlations, source)
    a, b, c = (combine(out, "arith", i) for i in range(3))
    assert np.array_equal(a * b, c) and a.shape == (3, 33)
    a, b, c = (combine(out, "matrix", i) for i in range(3))
    assert np.array_equal(np.matmul(a, b, dtype=np.uint64), c) and c.shape == (5, 4)
    a, b, c = (combine(out, "and", i, xor=True) for i in range(3))
    assert np.array_equal(a & b, c)
    plane, arith = combine(out, "dabits", 0, xor=True), combine(out, "dabits", 1)
    bits = unslice_plane(plane, 130)
    assert np.array_equal(bits, arith) and 20 < bits.sum() < 110
    # the shares themselves are not the values: each party's a differs from the total
    first = next(iter(out.values()))
    assert not np.array_equal(first["arith"][0], combine(out, "arith", 0))


async def arith_sizes(ctx: Context, sizes: list[int], ot_k: int) -> list[Any]:
    from meshmpc.mpc.ot_triples import OtTripleProvider

    provider = OtTripleProvider(ctx, ot_k=ot_k)
    return [await provider.arith_triples(RING64, (n,)) for n in sizes]


@pytest.mark.parametrize("ot_k", [2, 4])
def test_ot_triples_at_edge_sizes(ot_k: int) -> None:
    """0, 1, odd and past one 2^17-OT extension chunk (2048 elements) and past the
    3-slot ring of the streamed pipeline (6144): c = a b mod 2^64 on every element."""
    sizes = [0, 1, 7, 2049, 6145 + 4096]
    out = run_parties(["p0", "p1"], arith_sizes, sizes, ot_k)
    for i, n in enumerate(sizes):
        a, b, c = (out["p0"][i][j] + out["p1"][i][j] for j in range(3))
        assert a.shape == (n,) and np.array_equal(a * b, c)
        if n > 1:  # fresh randomness: neither party's share is the whole value
            assert not np.array_equal(out["p0"][i][0], a)


def test_ot_provider_refuses_what_it_cannot_make() -> None:
    async def job(ctx: Context, what: str) -> Any:
        provider = make_provider(ctx, "ot")
        await provider.setup()
        if what == "ring128":
            return await provider.arith_triples(RING128, (4,))
        return await provider.trunc_pairs(RING128, (4,), 16)

    for what in ("ring128", "trunc128"):
        with pytest.raises(UnsupportedOperationError):
            run_parties(["p0", "p1"], job, what)


def _cot_batch(rows: int, seed: int) -> tuple[np.ndarray, ...]:
    """Random COTs for the Gilboa kernels: q, delta, b and t = q ^ bit * delta."""
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 2**64, rows, dtype=np.uint64, endpoint=False)
    q = rng.integers(0, 256, (64 * rows, 16), dtype=np.uint8)
    delta = rng.integers(0, 256, 16, dtype=np.uint8)
    bits = np.unpackbits(b.view(np.uint8), bitorder="little").astype(bool)
    t = np.where(bits[:, None], q ^ delta, q)
    return q, delta, b, np.ascontiguousarray(t)


def _gilboa_send(q: np.ndarray, delta: np.ndarray, a: np.ndarray,
                 path: int = -1) -> tuple[np.ndarray, ...]:
    from meshmpc import _core
    from meshmpc.crypto.aes import FIXED_KEY_AES

    corr = np.empty(_core.gilboa_packed_bytes(a.size), np.uint8)
    sent = np.empty(a.size, np.uint64)
    _core.gilboa_cot_send(FIXED_KEY_AES.round_keys, q, delta, a, corr, sent, path)
    return corr, sent


@pytest.mark.parametrize("rows", [1, 15, 16, 37])
def test_gilboa_cot_kernels_multiply_with_the_receivers_bits(rows: int) -> None:
    from meshmpc import _core
    from meshmpc.crypto.aes import FIXED_KEY_AES

    q, delta, b, t = _cot_batch(rows, rows)
    a = np.random.default_rng(100 + rows).integers(0, 2**64, rows, dtype=np.uint64,
                                                   endpoint=False)
    corr, sent = _gilboa_send(q, delta, a)
    assert corr.size == 288 * rows + 8 and not corr[-8:].any()
    got = np.empty(rows, np.uint64)
    _core.gilboa_cot_recv(FIXED_KEY_AES.round_keys, t, b, corr, got)
    assert np.array_equal(sent + got, a * b)
    t[0, 0] ^= 1  # one receiver block off: its pad (hence the product) changes
    _core.gilboa_cot_recv(FIXED_KEY_AES.round_keys, t, b, corr, got)
    assert not np.array_equal(sent + got, a * b)
    with pytest.raises(ValueError, match="corr"):
        _core.gilboa_cot_recv(FIXED_KEY_AES.round_keys, t, b, corr[:-1], got)


@pytest.mark.parametrize("rows", [1, 17, 40])
def test_gilboa_kernel_paths_agree(rows: int) -> None:
    """Portable C, AES-NI and (where the CPU has it) VAES give the same bytes."""
    from meshmpc import _core
    from meshmpc.crypto.aes import FIXED_KEY_AES

    q, delta, b, t = _cot_batch(rows, 3 * rows)
    a = np.random.default_rng(rows).integers(0, 2**64, rows, dtype=np.uint64, endpoint=False)
    outs = [_gilboa_send(q, delta, a, path) for path in (0, 1, 2, -1)]
    for corr, sent in outs[1:]:
        assert np.array_equal(corr, outs[0][0]) and np.array_equal(sent, outs[0][1])
    got = [np.empty(rows, np.uint64) for _ in range(2)]
    for path, out in zip((0, -1), got, strict=True):
        _core.gilboa_cot_recv(FIXED_KEY_AES.round_keys, t, b, outs[0][0], out, path)
    assert np.array_equal(got[0], got[1]) and np.array_equal(outs[0][1] + got[0], a * b)


def test_gilboa_corrections_look_uniform_whatever_the_senders_value() -> None:
    """The receiver's view: with its own t fixed, the packed corrections carry no
    trace of a (a = 0 and a = 2^64 - 1 both give balanced, unbiased bits)."""
    rows = 2048
    q, delta, _, _ = _cot_batch(rows, 5)
    for a in (np.zeros(rows, np.uint64), np.full(rows, 2**64 - 1, np.uint64)):
        corr, _ = _gilboa_send(q, delta, a)
        bits = np.unpackbits(corr[:-8])
        # 4.7M bits: the mean of fair bits is within 0.5 +- 0.002 (about 9 sigma)
        assert abs(bits.mean() - 0.5) < 0.002
        byte_counts = np.bincount(corr[:-8], minlength=256)
        expected = corr[:-8].size / 256
        chi2 = float(((byte_counts - expected) ** 2 / expected).sum())
        assert chi2 < 400  # 255 degrees of freedom: p < 1e-6 past 400
