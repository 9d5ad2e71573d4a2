"""KKRT OPRF: sender's F(j, r_j) equals the receiver's output; other points differ."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc.crypto.prg import Prg
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot import kkrt
from meshmpc.ot.errors import OtInputError
from meshmpc.ot.kkrt import KkrtReceiver, KkrtSender


async def oprf_job(ctx: Context, batches: list[np.ndarray], seed: bytes | None) -> object:
    prg = Prg(seed + ctx.party.encode() * 15) if seed else None
    if ctx.party == "s":
        sender = await KkrtSender.setup(ctx, "r", prg)
        return [await sender.extend(len(x)) for x in batches]
    receiver = await KkrtReceiver.setup(ctx, "s", prg)
    return [await receiver.encode(x) for x in batches]


@pytest.mark.parametrize("sizes", [[1], [100, 129], [1000]])
def test_oprf_values_match_and_separate(sizes: list[int]) -> None:
    rng = np.random.default_rng(sum(sizes))
    batches = [rng.integers(0, 256, (n, 16), np.uint8) for n in sizes]
    out = run_parties(["s", "r"], oprf_job, batches, None)
    seen = set()
    for key, values, x in zip(out["s"], out["r"], batches, strict=True):
        n = len(x)
        idx = np.arange(n)
        assert np.array_equal(key.evaluate(idx, x), values)
        other = x.copy()
        other[:, 0] ^= 1
        assert not np.any(np.all(key.evaluate(idx, other) == values, axis=1))
        shifted = key.evaluate((idx + 1) % n, x)  # same input, other instance
        assert n == 1 or not np.any(np.all(shifted == values, axis=1))
        seen |= {row.tobytes() for row in values}
    assert len(seen) == sum(sizes)


def test_chunked_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kkrt, "CHUNK_INPUTS", 256)
    x = np.random.default_rng(1).integers(0, 256, (700, 16), np.uint8)
    key, values = (v[0] for v in run_parties(["s", "r"], oprf_job, [x], None).values())
    assert np.array_equal(key.evaluate(np.arange(700), x), values)


def test_transcript_is_stable(transcript) -> None:
    x = np.arange(16 * 130, dtype=np.uint32).astype(np.uint8).reshape(130, 16)

    async def job(ctx: Context) -> object:
        transcript.attach(ctx)
        return await oprf_job(ctx, [x], b"k")

    run_parties(["s", "r"], job)
    assert transcript.hexdigest() == KKRT_TRANSCRIPT


KKRT_TRANSCRIPT = "1763f2e227761cb78662e7958ee5292b4298fd12e524c1672eba680b93c6911a"


def test_bad_inputs_raise() -> None:
    async def job(ctx: Context) -> object:
        if ctx.party == "s":
            await KkrtSender.setup(ctx, "r")
            return None
        receiver = await KkrtReceiver.setup(ctx, "s")
        return await receiver.encode(np.zeros((4, 8), np.uint8))

    with pytest.raises(OtInputError, match=r"\(n, 16\)"):
        run_parties(["s", "r"], job)


def test_oprf_matches_its_definition() -> None:
    import hashlib

    from meshmpc.crypto.aes import Aes128

    x = np.random.default_rng(3).integers(0, 256, (40, 16), np.uint8)
    key, values = (v[0] for v in run_parties(["s", "r"], oprf_job, [x], None).values())
    code_keys = Prg(key._code.seed).blocks(4)
    for j in (0, 17, 39):
        code = b"".join(Aes128(k.tobytes()).encrypt(x[j : j + 1]).tobytes() for k in code_keys)
        row = key._q[j] ^ (np.frombuffer(code, np.uint8) & key._s)
        digest = hashlib.blake2b(j.to_bytes(8, "little") + row.tobytes(), digest_size=16,
                                 person=b"meshmpc.kkrt.1").digest()
        assert digest == values[j].tobytes() == key.evaluate([j], x[j : j + 1])[0].tobytes()
