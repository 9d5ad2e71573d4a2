"""SoftSpokenOT: punctured GGM trees, COT correlation for every k, traffic of
128/k bits per OT, flavours on top, kernel paths agree, stable transcript."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc import _core
from meshmpc.crypto.aes import available_paths
from meshmpc.crypto.prg import Prg
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot.errors import OtInputError
from meshmpc.ot.softspoken import (
    SoftSpokenReceiver,
    SoftSpokenSender,
    _delta_chunks,
    _puncture_choices,
    _receiver_trees,
    _sender_trees,
)


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_sender_rebuilds_every_leaf_but_the_punctured_one(k: int) -> None:
    prg = Prg(bytes([k]) * 16)
    c = 128 // k
    keys0, keys1 = prg.blocks(128), prg.blocks(128)
    delta_bits = prg.bits(128)
    path = _delta_chunks(delta_bits, k)
    choices = _puncture_choices(path, k)
    chosen = np.where(choices[:, None] == 1, keys1, keys0)
    leaves, sums = _receiver_trees(prg.blocks(c), k, keys0, keys1)
    rebuilt = _sender_trees(path, k, chosen, sums)
    punctured = np.arange(c) * (1 << k) + path
    mask = np.ones(leaves.shape[0], dtype=bool)
    mask[punctured] = False
    assert np.array_equal(rebuilt[mask], leaves[mask])
    assert not rebuilt[punctured].any()
    assert len({row.tobytes() for row in leaves}) == leaves.shape[0]


async def cot_job(ctx: Context, k: int, sizes: list[int]) -> object:
    if ctx.party == "s":
        sender = await SoftSpokenSender.setup(ctx, "r", k=k)
        before = ctx.traffic().bytes_received
        qs = [await sender.cot(n) for n in sizes]
        return sender.delta, qs, ctx.traffic().bytes_received - before
    receiver = await SoftSpokenReceiver.setup(ctx, "s", k=k)
    return [await receiver.random_cot(n) for n in sizes]


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_correlation_and_traffic(k: int) -> None:
    sizes = [1, 129, 0, 3000, 20000]
    out = run_parties(["s", "r"], cot_job, k, sizes)
    delta, qs, received = out["s"]
    for n, q, (choices, t) in zip(sizes, qs, out["r"], strict=True):
        assert q.shape == t.shape == (n, 16)
        assert np.array_equal(t, q ^ (choices[:, None] * delta))
    padded_bits = sum(-(-n // 128) * 128 for n in sizes) * (128 // k)
    assert padded_bits // 8 <= received < padded_bits // 8 + 2000


async def flavour_job(ctx: Context, m0: np.ndarray, m1: np.ndarray, c: np.ndarray) -> object:
    if ctx.party == "s":
        sender = await SoftSpokenSender.setup(ctx, "r")
        await sender.prefill(300)
        rot = await sender.rot(200)
        await sender.send(m0, m1)
        return rot
    receiver = await SoftSpokenReceiver.setup(ctx, "s")
    await receiver.prefill(300)
    rot = await receiver.rot(200)
    return rot, await receiver.receive(c)


def test_random_and_chosen_ot_on_top() -> None:
    rng = np.random.default_rng(4)
    m0, m1 = rng.integers(0, 256, (500, 16), np.uint8), rng.integers(0, 256, (500, 16), np.uint8)
    c = rng.integers(0, 2, 500).astype(np.uint8)
    out = run_parties(["s", "r"], flavour_job, m0, m1, c)
    (p0, p1), ((choices, m), got) = out["s"], out["r"]
    assert np.array_equal(m, np.where(choices[:, None] == 1, p1, p0))
    assert np.array_equal(got, np.where(c[:, None] == 1, m1, m0))


@pytest.mark.parametrize(("k", "m"), [(1, 8192 + 384), (2, 2048 + 128), (4, 4096 + 640),
                                    (4, 128), (8, 2048 + 128)])
def test_kernel_paths_agree(k: int, m: int) -> None:
    """Portable, AES-NI (the fused 256-bit VAES kernel for k <= 4 where the CPU has it)
    and VAES give the same corrections and rows; m past one column tile and not a
    multiple of the fused kernel's 8-block groups."""
    rng = np.random.default_rng(k)
    keys = _core.aes128_expand_many(rng.integers(0, 256, ((128 // k) << k, 16), np.uint8))
    r = rng.integers(0, 256, m // 8, np.uint8)
    delta = rng.integers(0, 256, 16, np.uint8)
    results = []
    for path in available_paths():
        corr = np.empty((128 // k, m // 8), np.uint8)
        t, q = np.empty((m, 16), np.uint8), np.empty((m, 16), np.uint8)
        _core.softspoken_receiver_into(keys, k, 9, r, corr, t, path)
        _core.softspoken_sender_into(keys, k, delta, 9, corr, q, path)
        assert np.array_equal(t, q ^ (np.unpackbits(r, bitorder="little")[:, None] * delta))
        results.append((corr, t, q))
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other, strict=True))


@pytest.mark.parametrize("k", [2, 4])
def test_corrections_look_uniform_whatever_the_choices(k: int) -> None:
    """The extension sender's view: the corrections U_i ^ r for choices all 0 and all 1
    (fresh PRG positions, as the protocol advances its counter) are balanced bits
    with flat byte counts, and the two carry no visible trace of r."""
    rng = np.random.default_rng(40 + k)
    keys = _core.aes128_expand_many(rng.integers(0, 256, ((128 // k) << k, 16), np.uint8))
    m = 1 << 15
    views = []
    for ctr, fill in ((0, 0x00), (m // 128, 0xFF)):
        corr = np.empty((128 // k, m // 8), np.uint8)
        t = np.empty((m, 16), np.uint8)
        _core.softspoken_receiver_into(keys, k, ctr, np.full(m // 8, fill, np.uint8), corr, t)
        bits = np.unpackbits(corr)
        assert abs(bits.mean() - 0.5) < 0.003  # >= 2^19 bits: about 4 sigma
        counts = np.bincount(corr.reshape(-1), minlength=256)
        expected = corr.size / 256
        assert float(((counts - expected) ** 2 / expected).sum()) < 400  # 255 dof
        views.append(bits)
    assert abs((views[0] == views[1]).mean() - 0.5) < 0.003


def test_bad_k_raises() -> None:
    async def job(ctx: Context) -> object:
        return await SoftSpokenReceiver.setup(ctx, "s", k=3)

    with pytest.raises(OtInputError, match="1, 2, 4 or 8"):
        run_parties(["r", "s"], job)


SOFTSPOKEN_TRANSCRIPT = "79aaebb1e04a91ae92d83b41e20b9c183afd7ed628c3ecdf17c91087ad37b923"


def test_transcript_is_stable(transcript) -> None:
    async def job(ctx: Context) -> object:
        transcript.attach(ctx)
        if ctx.party == "s":
            sender = await SoftSpokenSender.setup(ctx, "r", Prg(b"S" * 16))
            return await sender.cot(300)
        receiver = await SoftSpokenReceiver.setup(ctx, "s", Prg(b"R" * 16))
        return await receiver.random_cot(300)

    run_parties(["s", "r"], job)
    assert transcript.hexdigest() == SOFTSPOKEN_TRANSCRIPT
