"""Base OT: Chou-Orlandi "simplest OT" on the Ed25519 group (libsodium via PyNaCl).

Paper: T. Chou, C. Orlandi, "The Simplest Protocol for Oblivious Transfer",
LATINCRYPT 2015 (eprint 2015/267). Security: semi-honest, static corruption,
under CDH on the prime-order subgroup of Ed25519, with BLAKE2b as random oracle.

Messages (n OTs in one batch, 1.5 rounds):
  sender -> receiver: A = aG                              (32 bytes)
  receiver -> sender: B_i = b_i G + c_i A, i < n          (32 n bytes)
Outputs: sender k0_i = H(i, A, B_i, a B_i), k1_i = H(i, A, B_i, a (B_i - A));
receiver k_{c_i} = H(i, A, B_i, b_i A). Keys are 16 bytes ((n, 16) uint8).
The receiver's B_i are uniform whatever c_i, so the sender learns nothing;
the receiver cannot compute a b_i' G for the other key without solving CDH.
Scalars come from the caller's :class:`~meshmpc.crypto.prg.Prg` (OS-seeded).
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
_PERSON = b"meshmpc.baseot.1"


def _scalar(prg: Prg) -> bytes:
    return bytes(sodium.crypto_core_ed25519_scalar_reduce(prg.random_bytes(64)))


def _key(i: int, a_point: bytes, b_point: bytes, shared: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16, person=_PERSON)
    h.update(i.to_bytes(8, "little") + a_point + b_point + shared)
    return h.digest()


def _mul(scalar: bytes, point: bytes, peer: str) -> bytes:
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(scalar, point))
    except SodiumRuntimeError as exc:
        raise OtProtocolError(peer, "base OT point is invalid or of small order") from exc


def _check_points(raw: object, n: int, peer: str) -> list[bytes]:
    if not isinstance(raw, bytes) or len(raw) != POINT_BYTES * n:
        raise OtProtocolError(peer, f"expected {n} base-OT points of {POINT_BYTES} bytes")
    return [raw[POINT_BYTES * i : POINT_BYTES * (i + 1)] for i in range(n)]


async def base_ot_send(
    ctx: Context, peer: str, n: int, prg: Prg | None = None, tag: str = "baseot"
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Sender of n random base OTs; returns (k0, k1), each (n, 16) uint8."""
    prg = prg or Prg()
    a = _scalar(prg)
    a_point = bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(a))
    await ctx.send(peer, f"{tag}/A", a_point)
    b_points = _check_points(await ctx.recv(peer, f"{tag}/B"), n, peer)
    a_times_a = _mul(a, a_point, peer)
    k0 = np.empty((n, 16), dtype=np.uint8)
    k1 = np.empty((n, 16), dtype=np.uint8)
    for i, b_point in enumerate(b_points):
        shared0 = _mul(a, b_point, peer)
        shared1 = bytes(sodium.crypto_core_ed25519_sub(shared0, a_times_a))
        k0[i] = np.frombuffer(_key(i, a_point, b_point, shared0), dtype=np.uint8)
        k1[i] = np.frombuffer(_key(i, a_point, b_point, shared1), dtype=np.uint8)
    return k0, k1


async def base_ot_receive(
    ctx: Context, peer: str, choices: npt.ArrayLike, prg: Prg | None = None, tag: str = "baseot"
) -> npt.NDArray[np.uint8]:
    """Receiver of len(choices) base OTs (choices 0/1); returns k_c as (n, 16) uint8."""
    bits = np.asarray(choices, dtype=np.uint8).reshape(-1)
    if bits.size and bits.max() > 1:
        raise OtInputError("base OT choices must be 0 or 1")
    prg = prg or Prg()
    scalars = [_scalar(prg) for _ in range(bits.size)]
    # b_i G does not depend on A: compute it before waiting for the sender.
    b_points = [bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(b)) for b in scalars]
    a_point = await ctx.recv(peer, f"{tag}/A")
    if not isinstance(a_point, bytes) or not sodium.crypto_core_ed25519_is_valid_point(a_point):
        raise OtProtocolError(peer, "sender's base-OT point A is invalid")
    # Both candidates for every i, so the time spent does not depend on the choices.
    shifted = [bytes(sodium.crypto_core_ed25519_add(p, a_point)) for p in b_points]
    b_points = [(p, s)[c] for p, s, c in zip(b_points, shifted, bits.tolist(), strict=True)]
    await ctx.send(peer, f"{tag}/B", b"".join(b_points))
    keys = np.empty((bits.size, 16), dtype=np.uint8)
    for i, (b, b_point) in enumerate(zip(scalars, b_points, strict=True)):
        keys[i] = np.frombuffer(_key(i, a_point, b_point, _mul(b, a_point, peer)), dtype=np.uint8)
    return keys
