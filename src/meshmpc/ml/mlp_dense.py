"""Shared x shared dense products of the MLP without matrix triples (two-party semi2k, HE).

For X (m x k) and V (k x p) both additively shared mod 2^64 between parties
0 and 1, X V = X_0 V + X_1 V. Party i computes X_i V as the plain side of one
packed BFV product (:class:`~meshmpc.ml.product_he_matrix.HeMatrixEngine`): the
other party j encrypts V_j mod t under its key, i adds its own V_i in plaintext
(so the ciphertext holds V mod t, a small fixed-point value) and multiplies by
its share X_i cut in three signed 22-bit limbs,

    X_i = l_0 + 2^22 l_1 + 2^44 l_2   (|l| <= 2^21, mod 2^64)
    X_i V = l_0 V + 2^22 l_1 V + 2^44 l_2 V   (mod 2^64)

Each |l V| < 2^21 |V| k stays below 2^57 for an encoded |V| < 2^36 / k, a real
|V| < 2^20 / k with 16 fraction bits (the MLP's V is a weight matrix or a
back-propagated delta, far below that; not checked, as in the owner product),
so the masked results (the plain side keeps -R, the key holder decrypts
l V + R, uniform mod t) lift from mod t = 2^59 to Z_2^64 by one
correlated OT per entry and limb, and the limbs recombine exactly. Both
directions run at once (each party is plain side of its own X_i and key holder
for the other's). Per product: one uploaded set and three returned sets per
direction, against the triple's six uploads, four returned sets and an opening
of X - A and V - B. Security: as the owner product (semi-honest, either party
corrupted): what a key holder decrypts is uniform mod t, the plain side sees
RLWE ciphertexts; noise flooded to 2^-40 (protocols/mlp.md).
"""

from __future__ import annotations

import asyncio

import numpy as np

from meshmpc.linalg import SecretTensor, SecureBackend
from meshmpc.ml.product_he import truncate_product
from meshmpc.ml.product_he_matrix import (
    T_MASK,
    HeMatrixEngine,
    ProductSpec,
    lift_receiver,
    lift_sender,
)
from meshmpc.mpc.errors import MpcError
from meshmpc.ot import OtPool

LIMB = 22
LIMBS = 3
GROUPS = tuple(((limb, 0),) for limb in range(LIMBS))
"""Group g: limb g of the plain side's share times the (owner-completed) ciphertext."""


def signed_limbs3(a: np.ndarray) -> list[np.ndarray]:
    """a = l_0 + 2^22 l_1 + 2^44 l_2 (mod 2^64), each limb in [-2^21, 2^21]."""
    rest = a.view(np.int64).astype(np.int64)
    out = []
    for _ in range(LIMBS - 1):
        low = ((rest + (1 << (LIMB - 1))) & ((1 << LIMB) - 1)) - (1 << (LIMB - 1))
        out.append(low)
        rest = (rest - low) >> LIMB
    out.append(rest)  # 64 - 44 = 20 bits and a sign: within the bound
    return out


def recombine(parts: list[np.ndarray]) -> np.ndarray:
    """sum_g 2^(22 g) parts[g] mod 2^64."""
    total = np.zeros_like(parts[0])
    for g, part in enumerate(parts):
        total += part << np.uint64(LIMB * g)
    return total


class DenseProducts:
    """One party's HE keys and OT pool for the MLP's dense products with its peer."""

    def __init__(self, backend: SecureBackend) -> None:
        self.backend = backend
        self.ctx = backend.suite.ctx.scope("mlp-dense")
        if len(self.ctx.parties) != 2 or backend.ring.bits != 64:
            raise MpcError("the direct dense product runs between two parties over Z_2^64")
        self.peer = self.ctx.peers[0]
        self.engine = HeMatrixEngine(self.ctx.scope("he"), self.peer)
        self.pool: OtPool | None = None
        self.calls = 0

    async def setup(self) -> None:
        if self.pool is None:
            await self.engine.setup()
            self.pool = await OtPool.setup(self.ctx.scope("ot"), self.peer)

    async def matmul(self, x: SecretTensor, v: SecretTensor) -> SecretTensor:
        """<X @ V> truncated to the backend's scale; V is the small operand."""
        await self.setup()
        assert self.pool is not None
        if x.ndim != 2 or v.ndim != 2 or x.shape[1] != v.shape[0]:
            raise MpcError(f"dense product needs (m, k) @ (k, p), got {x.shape} @ {v.shape}")
        self.calls += 1
        (m, k), p = x.shape, v.shape[1]
        xs = np.ascontiguousarray(np.asarray(x.share, dtype=np.uint64))
        vs = np.ascontiguousarray(np.asarray(v.share, dtype=np.uint64)) & T_MASK
        spec = ProductSpec(m, k, p, 1, GROUPS, LIMB)
        me = self.ctx.party
        mine, theirs = await asyncio.gather(
            self._plain(spec, signed_limbs3(xs), vs, f"{self.calls}/{me}"),
            self._key(spec, vs, f"{self.calls}/{self.peer}"))
        share = mine + theirs
        return await truncate_product(SecretTensor(self.backend, share, x.scale + v.scale))

    async def _plain(self, spec: ProductSpec, limbs: list[np.ndarray], own: np.ndarray,
                     tag: str) -> np.ndarray:
        assert self.pool is not None
        masks = await self.engine.plain_side(self.ctx.scope(tag), spec, limbs, own=[own])
        flat = np.concatenate([o.reshape(-1) for o in masks])
        lifted = (await lift_sender(self.pool, flat)).reshape(LIMBS, *masks[0].shape)
        return recombine(list(lifted))

    async def _key(self, spec: ProductSpec, own: np.ndarray, tag: str) -> np.ndarray:
        assert self.pool is not None
        seen = await self.engine.key_side(self.ctx.scope(tag), spec, [own])
        flat = np.concatenate([s.reshape(-1) for s in seen])
        lifted = (await lift_receiver(self.pool, flat)).reshape(LIMBS, *seen[0].shape)
        return recombine(list(lifted))


def dense_for(backend: SecureBackend) -> DenseProducts | None:
    """The direct product when the suite is two-party semi2k with HE matrix triples."""
    provider = getattr(backend.suite, "provider", None)
    if backend.suite.name != "semi2k" or getattr(provider, "engine", None) is None:
        return None
    return DenseProducts(backend)
