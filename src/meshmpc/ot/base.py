"""Base OT: Chou-Orlandi "simplest OT" on Curve25519 (libsodium via PyNaCl).

Paper: T. Chou, C. Orlandi, "The Simplest Protocol for Oblivious Transfer",
LATINCRYPT 2015 (eprint 2015/267). Security: semi-honest, static corruption,
under CDH in the prime-order subgroup of Curve25519, BLAKE2b as random oracle.

Group operations: fixed-base multiplication and point addition on the Edwards
form (``crypto_scalarmult_ed25519_base``, ``crypto_core_ed25519_add/sub``);
variable-base multiplication with X25519 (``crypto_scalarmult``), about three
times faster than the Edwards one. Scalars are X25519-clamped on both forms,
so x25519(a, u(P)) = u(clamp(a) P) matches the Edwards points.

Messages (n OTs in one batch, 1.5 rounds):
  sender -> receiver: A = aG (Edwards, 32 bytes)
  receiver -> sender: u(B_i), u(B_i - A) with B_i = b_i G + c_i A   (64 n bytes)
Outputs: sender k0_i = H(i, A, u(B_i), u(B_i - A), x25519(a, u(B_i))),
k1_i = H(..., x25519(a, u(B_i - A))); receiver k_{c_i} = H(..., x25519(b_i, u(A))).
B_i is uniform whatever c_i (and B_i - A follows from it), so the sender
learns nothing; the other key needs a b_i A-style value, i.e. CDH. The
receiver sends u(B_i - A) itself so the sender needs no point arithmetic; a
semi-honest receiver computes it honestly. Scalars come from the caller's
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
_PERSON = b"meshmpc.baseot.2"
_P = 2**255 - 19


def _key(i: int, a_point: bytes, b_u: bytes, d_u: bytes, shared: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16, person=_PERSON)
    h.update(i.to_bytes(8, "little") + a_point + b_u + d_u + shared)
    return h.digest()


def _x25519(scalar: bytes, u: bytes, peer: str) -> bytes:
    try:
        return bytes(sodium.crypto_scalarmult(scalar, u))
    except SodiumRuntimeError as exc:
        raise OtProtocolError(peer, "base OT point is of small order") from exc


def _montgomery_u(points: list[bytes]) -> list[bytes]:
    """u = (1 + y) / (1 - y) of Edwards points (the birational map), one inversion."""
    ys = [int.from_bytes(p, "little") & ((1 << 255) - 1) for p in points]
    dens = [(1 - y) % _P for y in ys]
    prefix = [1]
    for d in dens:
        prefix.append(prefix[-1] * d % _P)
    inv = pow(prefix[-1], _P - 2, _P)
    us = [0] * len(ys)
    for i in range(len(ys) - 1, -1, -1):
        us[i] = (1 + ys[i]) * prefix[i] % _P * inv % _P
        inv = inv * dens[i] % _P
    return [u.to_bytes(32, "little") for u in us]


def _check_points(raw: object, n: int, peer: str) -> list[bytes]:
    if not isinstance(raw, bytes) or len(raw) != 2 * POINT_BYTES * n:
        raise OtProtocolError(peer, f"expected {2 * n} base-OT coordinates of {POINT_BYTES} bytes")
    return [raw[POINT_BYTES * i : POINT_BYTES * (i + 1)] for i in range(2 * n)]


async def base_ot_send(
    ctx: Context, peer: str, n: int, prg: Prg | None = None, tag: str = "baseot"
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Sender of n random base OTs; returns (k0, k1), each (n, 16) uint8."""
    prg = prg or Prg()
    a = prg.random_bytes(32)
    a_point = bytes(sodium.crypto_scalarmult_ed25519_base(a))
    await ctx.send(peer, f"{tag}/A", a_point)
    coords = _check_points(await ctx.recv(peer, f"{tag}/B"), n, peer)
    k0 = np.empty((n, 16), dtype=np.uint8)
    k1 = np.empty((n, 16), dtype=np.uint8)
    for i in range(n):
        b_u, d_u = coords[2 * i], coords[2 * i + 1]
        k0[i] = np.frombuffer(_key(i, a_point, b_u, d_u, _x25519(a, b_u, peer)), np.uint8)
        k1[i] = np.frombuffer(_key(i, a_point, b_u, d_u, _x25519(a, d_u, peer)), np.uint8)
    return k0, k1


def _receiver_points(base: list[bytes], bits: list[int], a_point: bytes) -> list[bytes]:
    """u(B_i), u(B_i - A) interleaved; both candidates computed so timing ignores c_i."""
    plus = [bytes(sodium.crypto_core_ed25519_add(p, a_point)) for p in base]
    minus = [bytes(sodium.crypto_core_ed25519_sub(p, a_point)) for p in base]
    points: list[bytes] = []
    for c, p, s, m in zip(bits, base, plus, minus, strict=True):
        points += [(p, s)[c], (m, p)[c]]
    return _montgomery_u(points)


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
    coords = _receiver_points(base, bits.tolist(), a_point)
    await ctx.send(peer, f"{tag}/B", b"".join(coords))
    (a_u,) = _montgomery_u([a_point])
    keys = np.empty((bits.size, 16), dtype=np.uint8)
    for i, b in enumerate(scalars):
        shared = _x25519(b, a_u, peer)
        key = _key(i, a_point, coords[2 * i], coords[2 * i + 1], shared)
        keys[i] = np.frombuffer(key, np.uint8)
    return keys
