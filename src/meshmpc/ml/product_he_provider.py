"""Dishonest-majority products of an *input provider's* matrix (an owner outside the
compute parties) with vectors secret-shared among the compute parties.

The provider P keeps X in plaintext; it never holds a share. Per product
(protocols/vertical.md, "Owners outside the compute parties"):

1. every compute party j encrypts its share (limbs, below) under its own BFV key
   and sends the ciphertexts to P;
2. P returns ``M Enc(u_j) + r_j`` to j (the HE product of :mod:`meshmpc.ml.product_he`:
   coefficient encoding, re-randomised, noise-flooded, masked by uniform r_j);
3. P's shares ``-r_j`` never go back to j: P hands their sum to the first compute
   party, so the compute parties alone end with additive shares of ``M v``.

Limbs and the lift to Z_2^64 (t = 2^59):

- two compute parties (the default): one limb, ``u_j = v_j mod t``. The three values
  (P's mask sum, s_1, s_2) are shares mod t of Y = M v mod t, which is small
  (|Y| < 2^57, the bound the two-party product assumes); compute party 1 adds P's
  mask sum to s_1, and the two compute parties lift their two shares mod t to Z_2^64
  by one correlated OT per output between themselves (P does no OT).
- three or more: two limbs per party (``v_j = u_lo + 2^5 u_hi``), P lifts each low
  limb with its holder by correlated OT and sends its Z_2^64 share to party 1.

Security (semi-honest, any coalition that misses one compute party or P's matrix):
P sees ciphertexts under keys it lacks; compute party j decrypts ``M u_j + r_j``
with r_j uniform mod t; party 1 also gets P's mask sum, uniform because it holds
-r_2, unknown to party 1. No intermediate value is revealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.linalg import SecretTensor, SecureBackend
from meshmpc.ml.product_he import T_MASK, HeParty, choose_layout, truncate_product
from meshmpc.ml.product_he_matrix import lift_receiver, lift_sender
from meshmpc.ml.product_he_owner import EncodedMatrix, PlainCache
from meshmpc.mpc.errors import MpcError
from meshmpc.net import Context
from meshmpc.ot import OtPool

MAX_ROWS = 1 << 31
OPS = ("matvec", "rmatvec")


class ProviderProduct(HeParty):
    """One provider's side, or one compute party's side, of the provider's products.

    Every member of the group (the provider and the compute parties) calls
    :meth:`product` for each product, in the same order.
    """

    def __init__(self, ctx: Context, provider: str, compute: Sequence[str], f: int) -> None:
        if provider in compute or len(compute) < 2:
            raise MpcError(f"the provider {provider!r} must not be one of the compute "
                           f"parties {list(compute)} (at least two)")
        members = [p for p in ctx.parties if p == provider or p in compute]
        super().__init__(ctx.subgroup(members).scope(f"provided/{provider}"))
        self.provider, self.compute, self.f = provider, list(compute), f
        self.one_limb = len(self.compute) == 2
        self._calls = 0
        self._lift_pool: OtPool | None = None
        self.cache: PlainCache | None = None

    async def product(self, x: Any, share: np.ndarray | None, shape: tuple[int, int],
                      transpose: bool, k: int, integer: bool = False,
                      rows_key: Any = None) -> np.ndarray | None:
        """M @ V with M = x (shape ``shape``) or its transpose, V (cols x k) shared among the
        compute parties. The provider passes ``x`` and gets None; a compute party passes
        its share (uint64, cols x k) and gets its share of M V mod 2^64 (rows x k) at V's
        scale plus f (plus 0 when ``integer``): truncate it with :func:`finish`.
        ``rows_key`` (provider): names the rows x is, so their NTT plaintexts are cached
        for the next product of the same rows (None: not cached)."""
        self._calls += 1
        rows, cols = (shape[1], shape[0]) if transpose else shape
        ctx = self.ctx.scope(f"p/{self._calls}")
        await self._setup(self.provider, pools=not self.one_limb)
        limbs = 1 if self.one_limb else 2
        lay = choose_layout(rows, cols, limbs * k * len(self.compute), cpu=True)
        if self.party == self.provider:
            if x is None:
                raise MpcError(f"party {self.provider}: pass the matrix you provide")
            matrix = EncodedMatrix(x, shape, transpose, 0 if integer else self.f, self.party)
            key = None if rows_key is None else (rows_key, transpose, integer, lay.d_w)
            await self._provide(ctx, matrix, lay, k, key)
            return None
        if share is None or share.shape != (cols, k) or share.dtype != np.uint64:
            raise MpcError(f"party {self.party}: the shared vector must be uint64 {(cols, k)}")
        return await self._receive(ctx, share, lay, rows, k)

    async def _provide(self, ctx: Context, matrix: EncodedMatrix, lay: Any, k: int,
                       key: Any) -> None:
        vectors = k * (1 if self.one_limb else 2)
        if key is not None and self.cache is None:
            self.cache = PlainCache()
        masks = await self._owner_masks(ctx, matrix, lay, vectors, self.compute, None,
                                        None if key is None else self.cache, key)
        if self.one_limb:
            total = np.zeros((k, lay.rows), dtype=np.uint64)
            for o in masks.values():
                total = (total + o) & T_MASK
            await ctx.send(self.compute[0], "mask", total.T.copy())
            return
        await ctx.send(self.compute[0], "mask", await self._lift_owner(masks, k, True, None))

    async def _receive(self, ctx: Context, share: np.ndarray, lay: Any, rows: int,
                       k: int) -> np.ndarray:
        first = self.party == self.compute[0]
        if not self.one_limb:
            out = await self._holder_side(ctx, self.provider, share, lay)
            return out + self._mask(await ctx.recv(self.provider, "mask"), rows, k) \
                if first else out
        s = (await self._decrypt_results(ctx, self.provider, [share & T_MASK], lay)).T
        pool = await self._pool()
        if first:
            a = (s + self._mask(await ctx.recv(self.provider, "mask"), rows, k)) & T_MASK
            return (await lift_sender(pool, a.reshape(-1))).reshape(rows, k)
        return (await lift_receiver(pool, s.copy().reshape(-1))).reshape(rows, k)

    def _mask(self, raw: Any, rows: int, k: int) -> np.ndarray:
        if not isinstance(raw, np.ndarray) or raw.dtype != np.uint64 or raw.shape != (rows, k):
            raise MpcError(f"party {self.provider}: sent a mask share of the wrong shape or "
                           f"type; expected uint64 {(rows, k)}")
        return raw

    async def _pool(self) -> OtPool:
        """The two compute parties' OT pool for the lift (set up once)."""
        if self._lift_pool is None:
            other = next(p for p in self.compute if p != self.party)
            self._lift_pool = await OtPool.setup(self.ctx.scope("lift-ot"), other)
        return self._lift_pool


async def finish(backend: SecureBackend, out: np.ndarray, scale: int,
                 vector: bool) -> SecretTensor:
    """A compute party's raw product share as a SecretTensor truncated to the backend's
    scale (``scale``: the untruncated result's)."""
    data = out.reshape(-1) if vector else out
    return await truncate_product(SecretTensor(backend, data, scale))


class ProvidedMatrix:
    """A provider's matrix as the compute parties use it: the provider serves products
    requested by the first compute party (operation and row range, checked) until
    released; the compute parties call :meth:`matvec` / :meth:`rmatvec` on row ranges."""

    def __init__(self, ctx: Context, provider: str, compute: Sequence[str],
                 shape: tuple[int, int], f: int, backend: SecureBackend | None) -> None:
        self.he = ProviderProduct(ctx, provider, compute, f)
        self.link = self.he.ctx.scope("requests")
        self.shape, self.backend = shape, backend
        self.provider, self.compute = provider, list(compute)

    async def _request(self, op: str, rows: slice, k: int) -> None:
        if self.he.party == self.compute[0]:
            await self.link.send(self.provider, "req",
                                 {"op": op, "lo": rows.start, "hi": rows.stop, "k": k})

    async def matvec(self, rows: slice, w: SecretTensor) -> SecretTensor:
        """<X[rows] @ w> (compute parties)."""
        return await self._compute("matvec", rows, w)

    async def rmatvec(self, rows: slice, r: SecretTensor) -> SecretTensor:
        """<X[rows]^T @ r> (compute parties)."""
        return await self._compute("rmatvec", rows, r)

    async def _compute(self, op: str, rows: slice, v: SecretTensor) -> SecretTensor:
        return await self.finish(await self.raw(op, rows, v), v)

    async def finish(self, out: np.ndarray, v: SecretTensor) -> SecretTensor:
        """:meth:`raw`'s share truncated (uses the suite: one at a time)."""
        assert self.backend is not None
        return await finish(self.backend, out, v.scale + self.backend.f,
                            np.asarray(v.share).ndim == 1)

    async def raw(self, op: str, rows: slice, v: SecretTensor) -> np.ndarray:
        """This compute party's untruncated share of the product (no suite operation, so
        several providers' products may run concurrently)."""
        share = np.asarray(v.share, dtype=np.uint64)
        k = 1 if share.ndim == 1 else share.shape[1]
        width = self.shape[1]
        expected = width if op == "matvec" else rows.stop - rows.start
        if share.shape[0] != expected:
            raise MpcError(f"party {self.he.party}: {op} of {self.provider}'s matrix needs "
                           f"{expected} vector rows, got {share.shape[0]}")
        await self._request(op, rows, k)
        out = await self.he.product(None, share.reshape(expected, k),
                                    (rows.stop - rows.start, width), op == "rmatvec", k)
        assert out is not None
        return out

    async def release(self) -> None:
        """The first compute party ends the provider's :meth:`serve` loop."""
        if self.he.party == self.compute[0]:
            await self.link.send(self.provider, "req", {"op": "done"})

    async def serve(self, x: Any) -> int:
        """The provider: answer product requests until released; returns how many."""
        served = 0
        while True:
            req = await self.link.recv(self.compute[0], "req")
            op = req.get("op") if isinstance(req, dict) else None
            if op == "done":
                return served
            lo, hi, k = (req.get(key) for key in ("lo", "hi", "k"))
            if op not in OPS or not all(isinstance(i, int) for i in (lo, hi, k)) or \
                    not 0 <= lo < hi <= self.shape[0] or not 1 <= k <= 64:
                raise MpcError(f"party {self.compute[0]}: requested an invalid product of "
                               f"{self.provider}'s matrix ({req!r}); rows must lie in "
                               f"[0, {self.shape[0]})")
            await self.he.product(x[lo:hi], None, (hi - lo, self.shape[1]),
                                  op == "rmatvec", k, rows_key=(lo, hi))
            served += 1
