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
        "552441383e43d1b8a1c3e4913312b06ca564f48ef86f974c54666596c350e6e6"
    )


def test_invalid_point_from_receiver_is_rejected() -> None:
    async def job(ctx: Context) -> object:
        if ctx.party == "s":
            return await base_ot_send(ctx, "r", 2)
        await ctx.recv("s", "baseot/A")
        await ctx.send("s", "baseot/B", b"\x00" * 64)  # not points of the prime-order group
        return None

    with pytest.raises(OtProtocolError, match="party 'r'"):
        run_parties(["s", "r"], job)


def test_bad_choice_bits_raise() -> None:
    async def job(ctx: Context) -> object:
        return await base_ot_receive(ctx, "s", [0, 2])

    with pytest.raises(OtInputError, match="0 or 1"):
        run_parties(["r", "s"], job)


def test_chou_orlandi_known_answer_structure() -> None:
    """Recompute every key from the transcript and the secret scalars, as in the paper:
    A = aG, B = bG + cA (the only receiver message), k0 = H(aB), k1 = H(a(B - A)),
    the receiver's key H(bA); the sender derives B - A itself."""
    import nacl.bindings as sodium

    from meshmpc.ot.base import ot_key

    choices = np.array([0, 1, 1, 0, 1], dtype=np.uint8)
    seen: dict[str, list[tuple[str, object]]] = {"s": [], "r": []}

    async def job(ctx: Context) -> object:
        inner = ctx.mesh.mailbox.deliver

        def deliver(peer: str, tag: str, obj: object) -> None:
            seen[ctx.party].append((tag, obj))
            inner(peer, tag, obj)

        ctx.mesh.mailbox.deliver = deliver  # type: ignore[method-assign]
        await ctx.barrier("recording")
        return await run_base(ctx, choices, (b"S" if ctx.party == "s" else b"R") * 16)

    out = run_parties(["s", "r"], job)
    (a_point,) = [o for t, o in seen["r"] if t == "baseot/A"]
    (blob,) = [o for t, o in seen["s"] if t == "baseot/B"]
    assert len(blob) == 32 * len(choices)  # B only: no receiver-made B - A
    sender_prg, receiver_prg = Prg(b"S" * 16), Prg(b"R" * 16)
    a = sender_prg.random_bytes(32)
    assert a_point == bytes(sodium.crypto_scalarmult_ed25519_base(a))
    k0, k1 = out["s"]
    for i, c in enumerate(choices):
        b = receiver_prg.random_bytes(32)
        b_point = blob[32 * i : 32 * i + 32]
        bg = bytes(sodium.crypto_scalarmult_ed25519_base(b))
        assert b_point == (bg if c == 0 else bytes(sodium.crypto_core_ed25519_add(bg, a_point)))
        ab = bytes(sodium.crypto_scalarmult_ed25519(a, b_point))
        a_b_minus_a = bytes(sodium.crypto_scalarmult_ed25519(
            a, bytes(sodium.crypto_core_ed25519_sub(b_point, a_point))))
        assert k0[i].tobytes() == ot_key(i, a_point, b_point, ab)
        assert k1[i].tobytes() == ot_key(i, a_point, b_point, a_b_minus_a)
        b_a = bytes(sodium.crypto_scalarmult_ed25519(b, a_point))
        assert out["r"][i].tobytes() == ot_key(i, a_point, b_point, b_a)
        assert (a_b_minus_a if c else ab) == b_a
