"""Dishonest-majority owner-matrix product: BFV coefficient-encoded matrix-vector
products (Cheetah's HomFC, Huang et al. USENIX Security 2022) through SEAL.

Security model: semi-honest, any number of corrupted parties, no dealer. The
owner's matrix M never leaves it; each other party ("key holder") encrypts
its own share of v under its own BFV key, the owner multiplies by its
plaintext blocks and returns masked, re-randomised, noise-flooded results; the
key holder decrypts ``M u + r`` with r uniform, the owner keeps ``-r``. Nothing is
revealed: what a key holder decrypts is uniform mod t, the ciphertexts it gets
are fresh-looking (public-key re-randomisation) and their noise is flooded
(2^-40 statistical distance); what the owner gets is RLWE ciphertexts.
See protocols/vertical.md for parameters, the lift from t = 2^59 to Z_2^64 and costs.

Two parties: the owner adds its own share homomorphically, so one product
computes M v for the shared v itself (|M v| < 2^57 required, true for
fixed-point data), and a correlated OT per output lifts the mod-2^59 shares to
Z_2^64. N > 2 parties: every key holder's uniform share is split in limbs
v_j = u_lo + 2^5 u_hi (u_lo < 32): M u_hi mod 2^59 shifted by 5 is exact mod
2^64; M u_lo is small and lifted by the same OT step. The owner's plaintext
NTTs are computed once per block and reused for every key holder and limb.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meshmpc.linalg import SecretTensor, SecureBackend
from meshmpc.ml.product import MatrixLike, OwnerProduct
from meshmpc.ml.product_he_matrix import (
    HeMatrixEngine,
    ProductSpec,
    lift_receiver,
    lift_sender,
)
from meshmpc.ml.product_he_owner import (
    BLOCK_CHUNK,
    EncodedMatrix,
    Layout,
    OwnerJob,
    PlainCache,
    run_chunks,
    vector_block,
)
from meshmpc.ml.product_he_seal import (
    PLAIN_BITS,
    POLY_DEGREE,
    X_BITS,
    BfvContext,
    HeKeys,
    flood_bits,
)
from meshmpc.mpc.errors import MpcError
from meshmpc.net import Context
from meshmpc.ot import OtPool

T_MASK = np.uint64((1 << PLAIN_BITS) - 1)
SPLIT_SHIFT = 64 - PLAIN_BITS  # u_hi = v_j >> 5 has 59 bits: exact mod t, shifted into 2^64


CPU_BYTES = (2_000_000, 3_200_000)
"""CPU of one input and of one output ciphertext (encrypt + NTT; re-randomise, flood,
switch, decrypt), in bytes of traffic it is worth (~100 kB per ms), for
:func:`choose_layout`'s ``cpu``: an output costs about 1.6 inputs."""


def choose_layout(rows: int, cols: int, vectors: int, cpu: bool = False) -> Layout:
    """The block width minimising bytes: inputs (few wide blocks) vs outputs (dense);
    with ``cpu`` bytes plus the ciphertexts' CPU (:data:`CPU_BYTES`)."""
    best: tuple[float, Layout] | None = None
    cpu_in, cpu_out = CPU_BYTES if cpu else (0, 0)
    d_w = 1
    while d_w <= POLY_DEGREE:
        lay = Layout(rows, cols, d_w)
        sent_in = lay.col_blocks * (2 * POLY_DEGREE * 3 * 8 + cpu_in)
        sent_out = lay.row_blocks * ((POLY_DEGREE + lay.n_w) * 2 * 8 + cpu_out)
        cost = vectors * (sent_in + sent_out)
        if best is None or cost < best[0]:
            best = (cost, lay)
        d_w *= 2
    assert best is not None
    return best[1]


class HeParty:
    """One party's HE state in a group (a Context whose parties take part in products
    owned by one of them): its BFV key, the others' public keys, one OT pool per
    owner-holder pair; and both sides of one product (the owner's and a key holder's).
    Shared by :class:`HeProduct` (the owner is a compute party) and
    :mod:`meshmpc.ml.product_he_provider` (the owner only provides its matrix)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.bfv = BfvContext()
        self._keys: HeKeys | None = None
        self._public: dict[str, bytes] = {}
        self._pools: dict[str, OtPool] = {}
        self._published: set[str] = set()

    @property
    def ctx(self) -> Context:
        return self._ctx

    @property
    def party(self) -> str:
        return self._ctx.party

    async def _setup(self, owner: str, pools: bool = True) -> None:
        """Key holders publish their BFV public keys; each owner-holder pair gets an OT
        pool (once; not with ``pools=False``, when the owner lifts nothing)."""
        setup = self.ctx.scope("he-setup")
        for p in self.ctx.parties:
            if p == owner or p in self._published:
                continue
            self._published.add(p)
            if p == self.party:
                self._keys, public = self.bfv.keygen()
                await setup.broadcast(f"pk/{p}", public)
            else:
                public = await setup.recv(p, f"pk/{p}")
                self.bfv.public_encryptor(public, p)  # validates it now, not in a worker
                self._public[p] = bytes(public)
        partners = self.ctx.peers if self.party == owner else [owner]
        for peer in partners if pools else []:
            if peer not in self._pools:
                self._pools[peer] = await OtPool.setup(self.ctx.scope("he-ot"), peer)

    # --- key holder ------------------------------------------------------------------
    def _limbs(self, share: np.ndarray) -> list[np.ndarray]:
        if len(self.ctx.parties) == 2:
            return [share & T_MASK]
        return [share >> np.uint64(SPLIT_SHIFT), share & np.uint64((1 << SPLIT_SHIFT) - 1)]

    async def _holder_side(self, ctx: Context, owner: str, share: np.ndarray,
                           lay: Layout) -> np.ndarray:
        limbs = self._limbs(share)
        decrypted = await self._decrypt_results(ctx, owner, limbs, lay)
        return await self._lift_holder(owner, decrypted, share.shape[1], len(limbs) == 2)

    async def _decrypt_results(self, ctx: Context, owner: str, limbs: list[np.ndarray],
                               lay: Layout) -> np.ndarray:
        """Send the limbs' encryptions to the owner; decrypt ``M u + r`` (mod t) for every
        limb and column: (limbs x columns) x rows, limb-major."""
        keys = self._keys
        assert keys is not None
        cts = [self.bfv.encrypt_coeffs(keys, vector_block(limb[:, k], lay, b))
               for limb in limbs for k in range(limb.shape[1]) for b in range(lay.col_blocks)]
        await ctx.send(owner, "in", cts)
        vectors = sum(limb.shape[1] for limb in limbs)
        decrypted = np.zeros((vectors, lay.rows), dtype=np.uint64)
        for start in range(0, lay.row_blocks, BLOCK_CHUNK):
            stop = min(start + BLOCK_CHUNK, lay.row_blocks)
            words = await ctx.recv(owner, f"out/{start}")
            expected = (stop - start) * vectors
            if not isinstance(words, list) or len(words) != expected:
                got = len(words) if isinstance(words, list) else "no"
                raise MpcError(f"party {owner}: sent {got} result ciphertexts for blocks "
                               f"{start}..{stop}, expected {expected}")
            for i, block in enumerate(range(start, stop)):
                for vec in range(vectors):
                    values = self.bfv.decrypt_compact(
                        keys, _words(words[i * vectors + vec], lay, owner), lay.positions)
                    lo, hi = lay.span(block)
                    decrypted[vec, lo:hi] = values[: hi - lo]
        return decrypted

    async def _lift_holder(self, owner: str, s: np.ndarray, k: int, split: bool) -> np.ndarray:
        pool = self._pools[owner]
        if not split:
            return (await lift_receiver(pool, s.reshape(-1))).reshape(k, -1).T.copy()
        hi = s[:k] << np.uint64(SPLIT_SHIFT)
        lo = (await lift_receiver(pool, s[k:].reshape(-1))).reshape(k, -1)
        return (hi + lo).T.copy()

    # --- owner -------------------------------------------------------------------------
    async def _owner_side(self, ctx: Context, matrix: EncodedMatrix, share: np.ndarray,
                          lay: Layout) -> np.ndarray:
        k = share.shape[1]
        combined = len(self.ctx.parties) == 2
        masks = await self._owner_masks(ctx, matrix, lay, k * (1 if combined else 2),
                                        self.ctx.peers, share if combined else None)
        local = None if combined else matrix.local_product(share, lay.rows, lay.cols)
        return await self._lift_owner(masks, k, not combined, local)

    async def _owner_masks(self, ctx: Context, matrix: EncodedMatrix, lay: Layout,
                           vectors: int, holders: list[str], own: np.ndarray | None,
                           cache: PlainCache | None = None,
                           cache_key: Any = None) -> dict[str, np.ndarray]:
        """Receive every holder's input ciphertexts, return ``M u + r`` to each (masked,
        re-randomised, flooded); the owner's shares ``-r`` per holder (vectors x rows)."""
        inputs = {h: await self._receive_inputs(ctx, h, vectors * lay.col_blocks)
                  for h in holders}
        bits = flood_bits(lay.col_blocks, lay.row_blocks * vectors * len(holders) * POLY_DEGREE)
        job = OwnerJob(matrix, lay, bits, vectors, inputs,
                       {h: self._public[h] for h in holders}, own, cache, cache_key)
        masks = {h: np.zeros((vectors, lay.rows), np.uint64) for h in holders}
        async for index, (words, shares) in run_chunks(job):
            lo = lay.span(index * BLOCK_CHUNK)[0]
            for h in holders:
                masks[h][:, lo:lo + shares[h].shape[1]] = shares[h]
                await ctx.send(h, f"out/{index * BLOCK_CHUNK}", words[h])
        return masks

    async def _receive_inputs(self, ctx: Context, holder: str, expected: int) -> list[bytes]:
        raw = await ctx.recv(holder, "in")
        if not isinstance(raw, list) or len(raw) != expected or not all(
                isinstance(c, bytes | bytearray) for c in raw):
            got = len(raw) if isinstance(raw, list) else "no"
            raise MpcError(f"party {holder}: sent {got} input ciphertexts, expected {expected}")
        return [bytes(c) for c in raw]

    async def _lift_owner(self, masks: dict[str, np.ndarray], k: int, split: bool,
                          local: np.ndarray | None) -> np.ndarray:
        """The owner's Z_2^64 share: every holder's masks lifted (``split``: the high limb
        shifted, the low limb lifted), plus ``local`` (M times the owner's own share)."""
        total = np.zeros((k, next(iter(masks.values())).shape[1]), dtype=np.uint64)
        for holder, o in masks.items():
            pool = self._pools[holder]
            if not split:
                total += (await lift_sender(pool, o.reshape(-1))).reshape(k, -1)
            else:
                total += o[:k] << np.uint64(SPLIT_SHIFT)
                total += (await lift_sender(pool, o[k:].reshape(-1))).reshape(k, -1)
        out = total.T.copy()
        if local is not None:
            out += local
        return out


class HeProduct(OwnerProduct, HeParty):
    """Owner-matrix products by lattice HE over a semi2k backend (2 or more parties)."""

    def __init__(self, backend: SecureBackend) -> None:
        OwnerProduct.__init__(self, backend)
        if backend.ring.bits != 64:
            raise MpcError("the HE product runs over Z_2^64 backends only")
        HeParty.__init__(self, backend.suite.ctx)
        self._calls = 0
        self._engine: HeMatrixEngine | None = None

    async def matvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                     shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        return await self._product(owner, x, v, shape, integer, transpose=False)

    async def rmatvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                      shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        return await self._product(owner, x, v, shape, integer, transpose=True)

    # --- orchestration ---------------------------------------------------------------
    async def _product(self, owner: str, x: Any, v: SecretTensor, shape: tuple[int, int],
                       integer: bool, transpose: bool) -> SecretTensor:
        self.backend.suite.check_party(owner)
        self._calls += 1
        rows, cols = (shape[1], shape[0]) if transpose else shape
        vec = v.ndim == 1
        if v.shape[0] != cols:
            raise MpcError(f"party {self.party}: the vector has {v.shape[0]} rows but the "
                           f"matrix of {owner} has {cols} {'rows' if transpose else 'columns'}")
        share = v.share.reshape(cols, -1)
        ctx = self.ctx.scope(f"he-product/{self._calls}")
        await self._setup(owner)
        if len(self.ctx.parties) == 2 and share.shape[1] > 1:
            # several columns: one packed product (a single vector keeps the path below,
            # which spreads a tall matrix's row blocks over worker processes)
            out = await self._packed(owner, x, share, shape, transpose, integer, rows, cols)
            return await truncate_product(SecretTensor(
                self.backend, out.reshape(rows) if vec else out,
                v.scale + (0 if integer else self.backend.f)))
        lay = choose_layout(rows, cols, share.shape[1] * (1 if len(self.ctx.parties) == 2 else 2)
                            * (len(self.ctx.parties) - 1))
        if self.party == owner:
            if x is None:
                raise MpcError(f"party {owner}: pass the matrix to the product you own")
            matrix = EncodedMatrix(x, shape, transpose, 0 if integer else self.backend.f,
                                   self.party)
            out = await self._owner_side(ctx, matrix, share, lay)
        else:
            out = await self._holder_side(ctx, owner, share, lay)
        result = SecretTensor(self.backend, out.reshape(rows) if vec else out,
                              v.scale + (0 if integer else self.backend.f))
        return await truncate_product(result)

    # --- two parties: every column in one packed product ---------------------------------
    async def _packed(self, owner: str, x: Any, share: np.ndarray, shape: tuple[int, int],
                      transpose: bool, integer: bool, rows: int, cols: int) -> np.ndarray:
        """M @ V for all columns of V at once (protocols/mlp.md): the key holder encrypts its
        share, the owner adds its own in plaintext, multiplies by M and masks; |M V| < 2^57
        mod t lifts to Z_2^64 by one correlated OT per entry."""
        if self._engine is None:
            self._engine = HeMatrixEngine(self.ctx.scope("he-packed"), self.ctx.peers[0])
            await self._engine.setup()
        engine = self._engine
        spec = ProductSpec(rows, cols, share.shape[1], 1, (((0, 0),),), X_BITS)
        ctx = engine.ctx.scope(f"product/{self._calls}")
        pool = self._pools[owner if self.party != owner else self.ctx.peers[0]]
        if self.party == owner:
            if x is None:
                raise MpcError(f"party {owner}: pass the matrix to the product you own")
            matrix = EncodedMatrix(x, shape, transpose, 0 if integer else self.backend.f,
                                   self.party)
            (o,) = await engine.plain_side(ctx, spec, [matrix.rows(0, rows)],
                                           own=[share & T_MASK])
            return await lift_sender(pool, o)
        (b,) = await engine.key_side(ctx, spec, [share & T_MASK])
        return await lift_receiver(pool, b)


def _words(raw: Any, lay: Layout, owner: str) -> np.ndarray:
    words = np.asarray(raw)
    if words.dtype != np.uint64 or words.shape != (2 * (lay.n_w + POLY_DEGREE),):
        raise MpcError(f"party {owner}: a result ciphertext has the wrong size or type")
    return words


async def truncate_product(t: SecretTensor) -> SecretTensor:
    """A product's result (at v's scale + f) truncated back to the backend's scale."""
    f = t.backend.f
    if t.scale <= f:
        return t
    suite = t.suite
    trunc = suite.trunc_exact if t.backend.fixed.exact_trunc else suite.trunc
    return SecretTensor(t.backend, await trunc(t.share, t.scale - f), f)

