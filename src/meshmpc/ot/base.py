"""Base OT: Chou-Orlandi "simplest OT" on Ed25519 (libsodium via PyNaCl).

Paper: T. Chou, C. Orlandi, "The Simplest Protocol for Oblivious Transfer",
LATINCRYPT 2015 (eprint 2015/267). Security: semi-honest, static corruption,
under CDH in the prime-order subgroup of Ed25519, BLAKE2b as random oracle.

Messages (n OTs in one batch, 1.5 rounds), as in the paper:
  sender -> receiver: A = aG, and the sender keeps T = aA      (32 bytes)
  receiver -> sender: B_i = b_i G + c_i A                       (32 n bytes)
Outputs: sender k0_i = H(i, A, B_i, a B_i), k1_i = H(i, A, B_i, a B_i - T)
(= a (B_i - A): the sender itself computes what the second key needs);
receiver k_{c_i} = H(i, A, B_i, b_i A). B_i is uniform whatever c_i, so the
sender learns nothing; the other key needs a b_i A-style value (CDH). The
sender checks that every B_i is a valid point of the prime-order subgroup.

(Before the hardening the receiver sent u(B_i - A) itself: a receiver who
deviated could send a pair whose both keys it knows. Now the sender derives
the second point from B_i and its own secret.)

Group operations: fixed- and variable-base multiplication and point
subtraction on the Edwards form (``crypto_scalarmult_ed25519_base``,
``crypto_scalarmult_ed25519``, ``crypto_core_ed25519_add/sub``); libsodium
clamps the scalars. Scalars come from the caller's
:class:`~meshmpc.crypto.prg.Prg` (OS-seeded).
"""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import numpy as np
import numpy.typing as npt
from nacl.exceptions import RuntimeError as SodiumRuntimeError

from meshmpc.crypto.prg import Prg
from meshmpc.net.context import Context
from meshmpc.ot.errors import OtInputError, OtProtocolError

POINT_BYTES = 32
_PERSON = b"meshmpc.baseot.3"


def ot_key(i: int, a_point: bytes, b_point: bytes, shared: bytes) -> bytes:
    """H(i, A, B_i, shared point): the random oracle of the paper (16 bytes)."""
    h = hashlib.blake2b(digest_size=16, person=_PERSON)
    h.update(i.to_bytes(8, "little") + a_point + b_point + shared)
    return h.digest()


def _mul(scalar: bytes, point: bytes, peer: str) -> bytes:
    try:
        return bytes(sodium.crypto_scalarmult_ed25519(scalar, point))
    except SodiumRuntimeError as exc:
        raise OtProtocolError(peer, "base OT point is invalid or of small order") from exc


def _check_points(raw: object, n: int, peer: str) -> list[bytes]:
    if not isinstance(raw, bytes) or len(raw) != POINT_BYTES * n:
        raise OtProtocolError(peer, f"expected {n} base-OT points of {POINT_BYTES} bytes")
    points = [raw[POINT_BYTES * i : POINT_BYTES * (i + 1)] for i in range(n)]
    for i, p in enumerate(points):
        if not sodium.crypto_core_ed25519_is_valid_point(p):
            raise OtProtocolError(peer, f"base-OT point {i} is not in the prime-order group")
    return points


async def base_ot_send(
    ctx: Context, peer: str, n: int, prg: Prg | None = None, tag: str = "baseot"
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Sender of n random base OTs; returns (k0, k1), each (n, 16) uint8."""
    prg = prg or Prg()
    a = prg.random_bytes(32)
    a_point = bytes(sodium.crypto_scalarmult_ed25519_base(a))
    t_point = _mul(a, a_point, peer)
    await ctx.send(peer, f"{tag}/A", a_point)
    points = _check_points(await ctx.recv(peer, f"{tag}/B"), n, peer)
    k0 = np.empty((n, 16), dtype=np.uint8)
    k1 = np.empty((n, 16), dtype=np.uint8)
    for i, b_point in enumerate(points):
        ab = _mul(a, b_point, peer)
        k0[i] = np.frombuffer(ot_key(i, a_point, b_point, ab), np.uint8)
        k1[i] = np.frombuffer(
            ot_key(i, a_point, b_point, bytes(sodium.crypto_core_ed25519_sub(ab, t_point))),
            np.uint8)
    return k0, k1


def _receiver_points(base: list[bytes], bits: list[int], a_point: bytes) -> list[bytes]:
    """B_i = b_i G + c_i A; both candidates computed so timing ignores c_i."""
    plus = [bytes(sodium.crypto_core_ed25519_add(p, a_point)) for p in base]
    return [(p, s)[c] for c, p, s in zip(bits, base, plus, strict=True)]


async def base_ot_receive(
    ctx: Context, peer: str, choices: npt.ArrayLike, prg: Prg | None = None, tag: str = "baseot"
) -> npt.NDArray[np.uint8]:
    """Receiver of len(choices) base OTs (choices 0/1); returns k_c as (n, 16) uint8."""
    bits = np.asarray(choices, dtype=np.uint8).reshape(-1)
    if bits.size and bits.max() > 1:
        raise OtInputError("base OT choices must be 0 or 1")
    prg = prg or Prg()
    scalars = [prg.random_bytes(32) for _ in range(bits.size)]
    # b_i G does not depend on A: compute it before waiting for the sender.
    base = [bytes(sodium.crypto_scalarmult_ed25519_base(b)) for b in scalars]
    a_point = await ctx.recv(peer, f"{tag}/A")
    if not isinstance(a_point, bytes) or not sodium.crypto_core_ed25519_is_valid_point(a_point):
        raise OtProtocolError(peer, "sender's base-OT point A is invalid")
    points = _receiver_points(base, bits.tolist(), a_point)
    await ctx.send(peer, f"{tag}/B", b"".join(points))
    keys = np.empty((bits.size, 16), dtype=np.uint8)
    for i, b in enumerate(scalars):
        keys[i] = np.frombuffer(ot_key(i, a_point, points[i], _mul(b, a_point, peer)), np.uint8)
    return keys
