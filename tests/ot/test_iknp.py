"""IKNP extension: COT correlation with delta, random and chosen OT relations,
batch sizes off multiples of 128, chunked messages, SIMD/portable agreement,
and stable transcripts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc import _core
from meshmpc.crypto.aes import available_paths
from meshmpc.crypto.prg import Prg
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot import iknp
from meshmpc.ot.errors import OtInputError
from meshmpc.ot.iknp import CotReceiver, CotSender

SIZES = [1, 100, 128, 129, 0, 1000, 4097]


def seeded(ctx: Context, seed: int | None) -> Prg | None:
    if seed is None:
        return None
    return Prg(bytes([seed, ctx.index]) * 8)


async def cot_job(ctx: Context, sizes: list[int], seed: int | None) -> object:
    if ctx.party == "s":
        sender = await CotSender.setup(ctx, "r", seeded(ctx, seed))
        return sender.delta, [await sender.cot(n) for n in sizes]
    receiver = await CotReceiver.setup(ctx, "s", seeded(ctx, seed))
    return [await receiver.random_cot(n) for n in sizes]


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_cot_correlation_holds_with_delta(seed: int | None) -> None:
    out = run_parties(["s", "r"], cot_job, SIZES, seed)
    delta, qs = out["s"]
    assert delta.shape == (16,) and delta.any()
    for n, q, (choices, t) in zip(SIZES, qs, out["r"], strict=True):
        assert q.shape == t.shape == (n, 16)
        assert np.array_equal(t, q ^ (choices[:, None] * delta))
    later = np.vstack(qs)
    assert len({row.tobytes() for row in later}) == later.shape[0]  # batches never repeat


def test_chunked_messages_match_one_shot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iknp, "CHUNK_OTS", 256)
    out = run_parties(["s", "r"], cot_job, [1000, 300], 7)
    monkeypatch.setattr(iknp, "CHUNK_OTS", 1 << 19)
    ref = run_parties(["s", "r"], cot_job, [1000, 300], 7)
    assert all(np.array_equal(a, b) for a, b in zip(out["s"][1], ref["s"][1], strict=True))


async def rot_job(ctx: Context, n: int) -> object:
    if ctx.party == "s":
        sender = await CotSender.setup(ctx, "r")
        first = await sender.rot(n)
        return first, await sender.rot(n)
    receiver = await CotReceiver.setup(ctx, "s")
    return await receiver.rot(n), await receiver.rot(np.ones(n, np.uint8))


@pytest.mark.parametrize("n", [1, 129, 2000])
def test_random_ot_receiver_gets_chosen_message(n: int) -> None:
    out = run_parties(["s", "r"], rot_job, n)
    for (m0, m1), (choices, m) in zip(out["s"], out["r"], strict=True):
        assert np.array_equal(m, np.where(choices[:, None] == 1, m1, m0))
        assert not np.any(np.all(m0 == m1, axis=1))
    assert np.array_equal(out["r"][1][1], out["s"][1][1])


async def chosen_job(ctx: Context, m0: np.ndarray, m1: np.ndarray, choices: np.ndarray) -> object:
    if ctx.party == "s":
        sender = await CotSender.setup(ctx, "r")
        await sender.send(m0, m1)
        await sender.send(m1, m0)
        return None
    receiver = await CotReceiver.setup(ctx, "s")
    return await receiver.receive(choices), await receiver.receive(choices)


@pytest.mark.parametrize("n", [1, 130, 3000])
def test_chosen_ot_delivers_chosen_message(n: int) -> None:
    rng = np.random.default_rng(n)
    m0, m1 = rng.integers(0, 256, (n, 16), np.uint8), rng.integers(0, 256, (n, 16), np.uint8)
    choices = rng.integers(0, 2, n).astype(np.uint8)
    first, second = run_parties(["s", "r"], chosen_job, m0, m1, choices)["r"]
    assert np.array_equal(first, np.where(choices[:, None] == 1, m1, m0))
    assert np.array_equal(second, np.where(choices[:, None] == 1, m0, m1))


def test_bad_inputs_raise() -> None:
    async def job(ctx: Context) -> object:
        if ctx.party == "s":
            sender = await CotSender.setup(ctx, "r")
            return await sender.send(np.zeros((3, 16), np.uint8), np.zeros((2, 16), np.uint8))
        receiver = await CotReceiver.setup(ctx, "s")
        return await receiver.cot([0, 1, 3])

    with pytest.raises(OtInputError):
        run_parties(["s", "r"], job)


@pytest.mark.parametrize("m", [128, 1024, 1152])
def test_extension_kernel_paths_agree(m: int) -> None:
    rng = np.random.default_rng(m)
    k0 = _core.aes128_expand_many(rng.integers(0, 256, (128, 16), np.uint8))
    k1 = _core.aes128_expand_many(rng.integers(0, 256, (128, 16), np.uint8))
    r = rng.integers(0, 256, m // 8, np.uint8)
    s = rng.integers(0, 256, 16, np.uint8)
    results = []
    for path in available_paths():
        u = np.empty((128, m // 8), np.uint8)
        t = np.empty((m, 16), np.uint8)
        q = np.empty((m, 16), np.uint8)
        _core.ext_receiver_into(k0, k1, 5, r, True, u, t, path)
        _core.ext_sender_into(np.where(np.unpackbits(s, bitorder="little")[:, None] == 1, k1, k0),
                              s, 5, u, q, path)
        results.append((u, t, q))
        bits = np.unpackbits(r, bitorder="little")
        assert np.array_equal(t, q ^ (bits[:, None] * s))
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other, strict=True))


COT_TRANSCRIPT = "1ee0fb4afff44653cbc27db3fbd7d746efe90e09b6a673e2286eccf5563d00ac"


def test_transcript_is_stable(transcript) -> None:
    async def job(ctx: Context) -> object:
        transcript.attach(ctx)
        if ctx.party == "s":
            sender = await CotSender.setup(ctx, "r", Prg(b"S" * 16))
            await sender.cot(200)
            await sender.rot(10)
            await sender.send(np.zeros((3, 16), np.uint8), np.ones((3, 16), np.uint8))
            await sender.prefill(100)
            await sender.send_correlated(np.arange(20, dtype=np.uint64))
            return None
        receiver = await CotReceiver.setup(ctx, "s", Prg(b"R" * 16))
        await receiver.random_cot(200)
        await receiver.rot(10)
        got = await receiver.receive([1, 0, 1])
        await receiver.prefill(100)
        await receiver.receive_correlated(np.ones(20, np.uint8))
        return got

    out = run_parties(["s", "r"], job)
    assert out["r"][:, 0].tolist() == [1, 0, 1]
    assert transcript.hexdigest() == COT_TRANSCRIPT


async def arith_job(ctx: Context, x: np.ndarray, choices: np.ndarray) -> object:
    if ctx.party == "s":
        sender = await CotSender.setup(ctx, "r")
        return await sender.send_correlated(x)
    receiver = await CotReceiver.setup(ctx, "s")
    width = 1 if x.ndim == 1 else x.shape[1]
    return await receiver.receive_correlated(choices, width)


@pytest.mark.parametrize("shape", [(1,), (333,), (200, 2)])
def test_arithmetic_correlated_ot(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(shape[0])
    x = rng.integers(0, 2**64, shape, dtype=np.uint64)
    choices = rng.integers(0, 2, shape[0]).astype(np.uint8)
    out = run_parties(["s", "r"], arith_job, x, choices)
    a, got = out["s"], out["r"]
    b = choices if x.ndim == 1 else choices[:, None]
    assert got.shape == x.shape == a.shape
    assert np.array_equal(got, a + x * b.astype(np.uint64))
    assert len(np.unique(a)) == a.size


async def stock_job(ctx: Context) -> object:
    if ctx.party == "s":
        sender = await CotSender.setup(ctx, "r")
        await sender.prefill(1000)
        assert (await sender.cot(0)).shape == (0, 16)
        q = await sender.cot(300)  # from stock
        pads = await sender.rot(500)  # from stock
        fresh = await sender.cot(400)  # 200 left in stock: fresh extension
        await sender.send(np.zeros((150, 16), np.uint8), np.ones((150, 16), np.uint8))
        return sender.delta, q, pads, fresh, sender.stocked
    receiver = await CotReceiver.setup(ctx, "s")
    await receiver.prefill(1000)
    assert (await receiver.cot([])).shape == (0, 16)
    choices = np.arange(300, dtype=np.uint8) % 2
    before = ctx.traffic().bytes_sent
    t = await receiver.cot(choices)
    online = ctx.traffic().bytes_sent - before
    rot = await receiver.rot(500)
    fresh = await receiver.random_cot(400)
    got = await receiver.receive(np.ones(150, np.uint8))
    return choices, t, online, rot, fresh, got, receiver.stocked


def test_prefilled_stock_serves_later_calls() -> None:
    out = run_parties(["s", "r"], stock_job)
    delta, q, (m0, m1), fresh_q, sender_left = out["s"]
    choices, t, online, (rot_choices, m), (fresh_c, fresh_t), got, receiver_left = out["r"]
    assert np.array_equal(t, q ^ (choices[:, None] * delta))
    assert online < 300  # 300 derandomisation bits, not 300 * 16 bytes
    assert np.array_equal(m, np.where(rot_choices[:, None] == 1, m1, m0))
    assert np.array_equal(fresh_t, fresh_q ^ (fresh_c[:, None] * delta))
    assert np.array_equal(got, np.ones((150, 16), np.uint8))
    assert sender_left == receiver_left == 50


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 700), min_size=1, max_size=4), st.binary(min_size=2, max_size=2))
def test_relations_hold_for_any_batch_sequence(sizes: list[int], seed: bytes) -> None:
    async def job(ctx: Context) -> object:
        prg = Prg(seed * 7 + bytes([ctx.index, 0]))
        if ctx.party == "s":
            sender = await CotSender.setup(ctx, "r", prg)
            return sender.delta, [await sender.rot(n) for n in sizes]
        receiver = await CotReceiver.setup(ctx, "s", prg)
        return [await receiver.rot(n) for n in sizes]

    out = run_parties(["s", "r"], job)
    for (m0, m1), (choices, m) in zip(out["s"][1], out["r"], strict=True):
        assert np.array_equal(m, np.where(choices[:, None] == 1, m1, m0))
