"""CrypTFlow2-style millionaires' comparison (semi2k comparison="millionaire"):
the C leaf kernels against the digit relations, sign bits and less-than against
plaintext, chunking, and the refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from meshmpc import _core
from meshmpc.linalg import SecureBackend
from meshmpc.mpc import millionaire
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.ring import RING64
from meshmpc.mpc.semi2k import Semi2k
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot import OtPool

from .conftest import PARTIES


def _plane_bits(planes: np.ndarray, n: int) -> np.ndarray:
    """(16, w) planes -> (n, 16) 0/1 array."""
    bits = np.unpackbits(planes.view(np.uint8), bitorder="little").reshape(16, -1)
    return bits[:, :n].T


def test_leaf_kernels_share_digit_less_and_equal() -> None:
    rng = np.random.default_rng(3)
    n = 70  # a partial last plane word
    u = rng.integers(0, 2**63, n, dtype=np.uint64)
    v = rng.integers(0, 2**63, n, dtype=np.uint64)
    v[:3] = u[:3]  # equal numbers: every digit equal
    m0 = rng.integers(0, 256, (64 * n, 16), dtype=np.uint8)
    m1 = rng.integers(0, 256, (64 * n, 16), dtype=np.uint8)
    choices = np.unpackbits(v.view(np.uint8), bitorder="little").astype(bool)
    m = np.where(choices[:, None], m1, m0)  # what the receiver's random OTs give
    w = (n + 63) // 64
    lt_s = rng.integers(0, 2**63, (16, w), dtype=np.uint64)
    eq_s = rng.integers(0, 2**63, (16, w), dtype=np.uint64)
    masked = np.empty(16 * n, np.uint32)
    _core.mill_send(m0, m1, u, lt_s, eq_s, masked)
    lt = np.empty((16, w), np.uint64)
    eq = np.empty_like(lt)
    _core.mill_recv(m, v, masked, lt, eq)
    du = (u[:, None] >> (4 * np.arange(16, dtype=np.uint64))) & np.uint64(15)
    dv = (v[:, None] >> (4 * np.arange(16, dtype=np.uint64))) & np.uint64(15)
    assert np.array_equal(_plane_bits(lt ^ lt_s, n), (du < dv).astype(np.uint8))
    assert np.array_equal(_plane_bits(eq ^ eq_s, n), (du == dv).astype(np.uint8))
    # with any other pad set the receiver decodes noise, not the sender's relation
    _core.mill_recv(np.where(choices[:, None], m0, m1), v, masked, lt, eq)
    assert not np.array_equal(_plane_bits(lt ^ lt_s, n), (du < dv).astype(np.uint8))


def test_leaf_kernels_check_sizes() -> None:
    pads = np.zeros((64 * 4, 16), np.uint8)
    planes = np.zeros((16, 1), np.uint64)
    with pytest.raises(ValueError, match="pads"):
        _core.mill_send(pads[:-1], pads, np.zeros(4, np.uint64), planes, planes,
                        np.zeros(64, np.uint32))


async def sign_job(ctx: Context, xs: np.ndarray, ys: np.ndarray) -> dict[str, Any]:
    s = await make_suite(ctx, "semi2k", triples="ot", comparison="millionaire")
    x = await s.input(ctx.parties[0], xs if ctx.index == 0 else None, xs.shape)
    backend = SecureBackend(s)
    a = await backend.input(ctx.parties[0], ys if ctx.index == 0 else None, ys.shape)
    b = await backend.input(ctx.parties[1], -ys if ctx.index == 1 else None, ys.shape)
    return {"msb": await s.reveal(await s.msb(x)), "less": await (await (a < b)).reveal()}


def test_signs_and_less_match_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(millionaire, "CHUNK", 256)  # several OT batches per call
    rng = np.random.default_rng(9)
    xi = rng.integers(-(2**63), 2**63 - 1, size=1000, dtype=np.int64)
    xi[:8] = [0, -1, 1, 2**62, -(2**62), -(2**63), 2**63 - 1, 2**16]
    ys = rng.uniform(-100, 100, 1000)
    ys[:3] = [0.0, 1e-4, -1e-4]
    out = run_parties(PARTIES[:2], sign_job, RING64.from_int(xi), ys)[PARTIES[0]]
    assert np.array_equal(out["msb"], (xi < 0).astype(np.uint64))
    assert np.array_equal(out["less"], (ys < -ys).astype(np.float64))


def test_millionaire_needs_two_parties() -> None:
    async def job(ctx: Context) -> object:
        return await make_suite(ctx, "semi2k", triples="ot", comparison="millionaire")

    with pytest.raises(MpcError, match="exactly 2 parties"):
        run_parties(PARTIES[:3], job)


def test_two_party_ot_suites_compare_with_the_millionaires_protocol() -> None:
    async def job(ctx: Context, triples: str) -> str:
        suite = await make_suite(ctx, "semi2k", triples=triples)
        assert isinstance(suite, Semi2k)
        return suite.comparison

    assert run_parties(PARTIES[:2], job, "ot")[PARTIES[0]] == "millionaire"
    assert run_parties(PARTIES[:2], job, "dealer")[PARTIES[0]] == "circuit"
    assert run_parties(PARTIES[:3], job, "ot")[PARTIES[0]] == "circuit"


async def pairs_job(ctx: Context, shares: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pool = await OtPool.setup(ctx.scope("pairs-ot"), ctx.peers[0])
    sign = millionaire.MillionaireSign(ctx, pool, sender=ctx.index == 0)
    x, y1, y2 = (s[ctx.index] for s in shares)
    return await sign.and_pairs(x, y1, y2)


def test_and_pairs_share_one_mask_and_stay_correct() -> None:
    rng = np.random.default_rng(4)
    values = [rng.integers(0, 2**63, (3, 5), dtype=np.uint64) * 2 + 1 for _ in range(3)]
    shares = []
    for v in values:
        mask = rng.integers(0, 2**63, v.shape, dtype=np.uint64)
        shares.append([v ^ mask, mask])
    out = run_parties(PARTIES[:2], pairs_job, shares)
    z1 = out[PARTIES[0]][0] ^ out[PARTIES[1]][0]
    z2 = out[PARTIES[0]][1] ^ out[PARTIES[1]][1]
    x, y1, y2 = values
    assert np.array_equal(z1, x & y1) and np.array_equal(z2, x & y2)
    assert not np.array_equal(out[PARTIES[0]][0], x & y1)  # a share, not the value
