"""Chou-Orlandi base OT: receiver's key equals the chosen sender key; bad points rejected."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc.crypto.prg import Prg
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.ot.base import base_ot_receive, base_ot_send
from meshmpc.ot.errors import OtInputError, OtProtocolError


async def run_base(ctx: Context, choices: np.ndarray, seed: bytes | None) -> object:
    prg = Prg(seed) if seed else None
    if ctx.party == "s":
        return await base_ot_send(ctx, "r", len(choices), prg)
    return await base_ot_receive(ctx, "s", choices, prg)


@pytest.mark.parametrize("n", [1, 5, 128])
def test_receiver_gets_chosen_key(n: int) -> None:
    choices = np.random.default_rng(n).integers(0, 2, n).astype(np.uint8)
    out = run_parties(["s", "r"], run_base, choices, None)
    k0, k1 = out["s"]
    kc = out["r"]
    assert np.array_equal(kc, np.where(choices[:, None] == 1, k1, k0))
    assert not np.any(np.all(k0 == k1, axis=1))
    assert len({row.tobytes() for row in k0}) == n


def test_transcript_is_stable(transcript) -> None:
    choices = Prg(b"c" * 16).bits(16)

    async def job(ctx: Context) -> object:
        transcript.attach(ctx)
        seed = b"s" * 16 if ctx.party == "s" else b"r" * 16
        return await run_base(ctx, choices, seed)

    run_parties(["s", "r"], job)
    assert transcript.hexdigest() == (
        "34361c2f33287109f27dad9549430432b44cc517ccb86f159309c3aa4ea616e0"
    )


def test_invalid_point_from_receiver_is_rejected() -> None:
    async def job(ctx: Context) -> object:
        if ctx.party == "s":
            return await base_ot_send(ctx, "r", 2)
        await ctx.recv("s", "baseot/A")
        await ctx.send("s", "baseot/B", b"\x00" * 128)  # u = 0: a small-order point
        return None

    with pytest.raises(OtProtocolError, match="party 'r'"):
        run_parties(["s", "r"], job)


def test_bad_choice_bits_raise() -> None:
    async def job(ctx: Context) -> object:
        return await base_ot_receive(ctx, "s", [0, 2])

    with pytest.raises(OtInputError, match="0 or 1"):
        run_parties(["r", "s"], job)


def test_montgomery_map_matches_libsodium() -> None:
    import nacl.bindings as sodium

    from meshmpc.ot.base import _montgomery_u

    prg = Prg(b"m" * 16)
    points = [bytes(sodium.crypto_scalarmult_ed25519_base(prg.random_bytes(32))) for _ in range(9)]
    expected = [bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(p)) for p in points]
    assert _montgomery_u(points) == expected
