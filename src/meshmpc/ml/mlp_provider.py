"""An input provider's first layer as the plain side of a packed BFV product (two compute parties).

Setting: semi2k between two compute parties c0, c1 (dishonest majority, no
dealer); an *input provider* P (not a compute party) holds X_P in plaintext.
The MLP needs shares of X_P[rows] @ W (forward; W = W_0 + W_1 shared, d x h)
and of X_P[rows]^T @ delta (backward; delta shared, m x h). Before, X_P was
secret-shared once and multiplied with HE matrix triples (two cross terms of
three uploads each, an opening of X - A, and n x d shared words in memory).
Here P is the plain side of one packed product per compute party:

    c_i: encrypts V_i mod t (its share of W or delta) under its own BFV key, sends it
    P:   M = X_P[rows] (or its transpose) as plaintext blocks (NTT'd once, used for
         both key holders); Y_0 = M Enc_0(V_0) + R,  Y_1 = M Enc_1(V_1) - R with one
         fresh uniform R mod t per call; re-randomises (public-key encryption of zero
         under the holder's key), floods the noise (2^-40), switches down, returns
    c_i: decrypts M V_i +- R mod t; the two values are a 2-sharing of M V mod t
         (V_0 + V_1 = V mod 2^64, hence mod t = 2^59); |M V| < 2^57 (fixed-point
         data) so one correlated OT per entry between c0 and c1 lifts it to Z_2^64
         (:func:`meshmpc.ml.product_he_matrix.lift_sender`).

The mask sum is zero, so P keeps no share and sends nothing else. Views
(semi-honest, any one party corrupted; c0 with c1 hold the output anyway):
c_i decrypts M V_i +- R, uniform mod t because R is uniform and unknown to it;
P sees RLWE ciphertexts only. Encoding and layouts are those of
:mod:`meshmpc.ml.product_he_matrix` (Cheetah's HomFC with many output columns).

Messages: the compute parties drive the provider. For call n both send a
header ``{"op": "fwd" | "bwd" | "done", "lo", "hi", "cols"}`` and their
ciphertexts; P checks that the two headers agree and that the rows exist
before it computes. The batch schedule is public (a hash of the public seed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meshmpc.linalg import SecretTensor, SecureBackend, concatenate
from meshmpc.ml.product_he import truncate_product
from meshmpc.ml.product_he_matrix import (
    T_MASK,
    MatrixLayout,
    ProductSpec,
    cipher_coeffs,
    lift_receiver,
    lift_sender,
    plain_coeffs,
)
from meshmpc.ml.product_he_owner import EncodedMatrix
from meshmpc.ml.product_he_seal import POLY_DEGREE, X_BITS, BfvContext, HeKeys
from meshmpc.ml.vertical import VerticalError, VerticalSession
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.ot import OtPool

SCOPE = "mlp-provider"
OPS = ("fwd", "bwd", "done")
MAX_COLS = 1 << 16


def provider_product_applies(session: VerticalSession) -> bool:
    """Whether input providers take part as the plain side (every party can tell:
    dishonest majority with exactly two compute parties)."""
    return session.security == "dishonest-majority" and len(session.compute) == 2


def product_spec(rows: int, inner: int, cols: int) -> ProductSpec:
    """One plaintext (the provider's block, |x 2^f| < 2^X_BITS), one ciphertext set."""
    return ProductSpec(rows, inner, cols, 1, (((0, 0),),), X_BITS)


@dataclass
class Pending:
    """A product requested from a provider, not collected yet."""

    owner: str
    call: int
    spec: ProductSpec
    scale: int


class ProviderProducts:
    """A compute party's side: requests products from providers, collects and lifts them."""

    def __init__(self, session: VerticalSession, providers: Sequence[str]) -> None:
        self.session = session
        self.backend: SecureBackend = session.require_backend()
        self.ctx = session.ctx.scope(SCOPE)
        self.providers = list(providers)
        self.index = session.compute.index(session.ctx.party)
        self.peer = session.compute[1 - self.index]
        self.bfv = BfvContext()
        self.keys: HeKeys | None = None
        self.pool: OtPool | None = None
        self.calls = dict.fromkeys(self.providers, 0)
        """Requests sent to each provider (its loop numbers them 1, 2, ...)."""

    async def setup(self) -> None:
        """BFV keys (public key to every provider) and an OT pool with the other compute party."""
        if self.keys is not None:
            return
        self.keys, public = self.bfv.keygen()
        for owner in self.providers:
            await self.ctx.send(owner, "pk", public)
        self.pool = await OtPool.setup(self.ctx.scope("ot"), self.peer)

    async def request(self, owner: str, v: SecretTensor, rows: slice, width: int,
                      transpose: bool) -> Pending:
        """Send the header and Enc(V_i mod t) for X[rows] @ V, or X[rows]^T @ V if
        ``transpose`` (``width``: the provider's column count)."""
        await self.setup()
        assert self.keys is not None
        share = np.asarray(v.share, dtype=np.uint64).reshape(v.shape[0], -1)
        m = rows.stop - rows.start
        inner = m if transpose else width
        if share.shape[0] != inner:
            raise VerticalError(f"party {self.session.ctx.party}: the shared operand has "
                                f"{share.shape[0]} rows, the product with {owner}'s "
                                f"{'rows' if transpose else 'columns'} needs {inner}")
        spec = product_spec(width if transpose else m, inner, share.shape[1])
        lay = spec.layout()
        _, kb_n, pb_n = lay.blocks
        coded = share & T_MASK
        cts = [self.bfv.encrypt_coeffs(self.keys, cipher_coeffs(coded, lay, kb, pb))
               for kb in range(kb_n) for pb in range(pb_n)]
        self.calls[owner] += 1
        call = self.calls[owner]
        head = {"op": "bwd" if transpose else "fwd", "lo": rows.start, "hi": rows.stop,
                "cols": share.shape[1]}
        await self.ctx.send(owner, f"head/{call}", head)
        await self.ctx.send(owner, f"in/{call}", cts)
        return Pending(owner, call, spec, v.scale + self.backend.f)

    async def lifted(self, pending: Sequence[Pending], summed: bool) -> list[np.ndarray]:
        """This party's Z_2^64 shares of the products (scale 2f, not truncated), lifted in
        one OT batch; ``summed``: of their sum (same shapes), else one array each."""
        assert self.keys is not None and self.pool is not None
        parts = [await self._decrypt(p) for p in pending]
        if summed:
            total = parts[0]
            for part in parts[1:]:
                total = (total + part) & T_MASK
            parts = [total]
        flat = np.concatenate([p.reshape(-1) for p in parts])
        lifted = await (lift_receiver(self.pool, flat) if self.index == 0
                        else lift_sender(self.pool, flat))
        out, offset = [], 0
        for part in parts:
            out.append(lifted[offset: offset + part.size].reshape(part.shape))
            offset += part.size
        return out

    async def collect(self, pending: Sequence[Pending], summed: bool) -> list[SecretTensor]:
        """:meth:`lifted` as tensors, truncated to scale f by one truncation for all."""
        parts = await self.lifted(pending, summed)
        flat = np.concatenate([p.reshape(-1) for p in parts])
        tensor = await truncate_product(SecretTensor(self.backend, flat, pending[0].scale))
        out, offset = [], 0
        for part in parts:
            out.append(tensor[offset: offset + part.size].reshape(part.shape))
            offset += part.size
        return out

    async def _decrypt(self, pending: Pending) -> np.ndarray:
        assert self.keys is not None
        lay = pending.spec.layout()
        mb_n, _, pb_n = lay.blocks
        raw = await self.ctx.recv(pending.owner, f"out/{pending.call}")
        if not isinstance(raw, list) or len(raw) != mb_n * pb_n:
            raise VerticalError(f"party {pending.owner}: sent "
                                f"{len(raw) if isinstance(raw, list) else 'no'} result "
                                f"ciphertexts for product {pending.call}, expected {mb_n * pb_n}")
        positions = lay.positions
        width = 2 * (positions.size + POLY_DEGREE)
        full = np.zeros((mb_n * lay.m_w, pb_n * lay.p_w), dtype=np.uint64)
        for mb in range(mb_n):
            for pb in range(pb_n):
                words = np.asarray(raw[mb * pb_n + pb])
                if words.dtype != np.uint64 or words.shape != (width,):
                    raise VerticalError(f"party {pending.owner}: a result ciphertext of product "
                                        f"{pending.call} has the wrong size or type")
                values = self.bfv.decrypt_compact(self.keys, words, positions)
                full[mb * lay.m_w:(mb + 1) * lay.m_w, pb * lay.p_w:(pb + 1) * lay.p_w] = \
                    values.reshape(lay.m_w, lay.p_w)
        return full[: pending.spec.m, : pending.spec.p]

    async def close(self) -> None:
        """Tell every provider that training and scoring are over."""
        for owner in self.providers:
            self.calls[owner] += 1
            await self.ctx.send(owner, f"head/{self.calls[owner]}",
                                {"op": "done", "lo": 0, "hi": 0, "cols": 0})


# --- the provider ----------------------------------------------------------------------
async def serve(session: VerticalSession, x: np.ndarray, frac_bits: int) -> int:
    """The provider's loop: answer the compute parties' products on its rows ``x``
    (n x d, standardised, in batch layout order) until they say done; returns the count."""
    ctx = session.ctx.scope(SCOPE)
    me, compute = session.ctx.party, list(session.compute)
    bfv = BfvContext()
    encryptors = {c: bfv.public_encryptor(await ctx.recv(c, "pk"), c) for c in compute}
    call = 0
    while True:
        call += 1
        heads = [await ctx.recv(c, f"head/{call}") for c in compute]
        op, lo, hi, cols = _check_heads(heads, compute, me, x.shape[0], call)
        if op == "done":
            return call - 1
        block = x[lo:hi]
        transpose = op == "bwd"
        rows, inner = (x.shape[1], hi - lo) if transpose else (hi - lo, x.shape[1])
        spec = product_spec(rows, inner, cols)
        matrix = EncodedMatrix(block, block.shape, transpose, frac_bits, me).rows(0, rows)
        raw = {c: await ctx.recv(c, f"in/{call}") for c in compute}
        words = _plain_products(bfv, spec, matrix, raw, encryptors, compute)
        for c in compute:
            await ctx.send(c, f"out/{call}", words[c])
        await asyncio.sleep(0)


def _check_heads(heads: list[Any], compute: list[str], me: str, n: int,
                 call: int) -> tuple[str, int, int, int]:
    for party, head in zip(compute, heads, strict=True):
        ok = isinstance(head, dict) and head.get("op") in OPS and all(
            isinstance(head.get(k), int) and not isinstance(head.get(k), bool)
            for k in ("lo", "hi", "cols"))
        if not ok:
            raise VerticalError(f"party {party}: sent a malformed product request {call} to "
                                f"provider {me}")
        if head != heads[0]:
            raise VerticalError(f"parties {compute[0]} and {party} asked provider {me} for "
                                f"different products in request {call}: {heads[0]} vs {head}")
    head = heads[0]
    op, lo, hi, cols = head["op"], head["lo"], head["hi"], head["cols"]
    if op != "done" and not (0 <= lo < hi <= n and 1 <= cols <= MAX_COLS):
        raise VerticalError(f"party {compute[0]}: request {call} asks provider {me} for rows "
                            f"{lo}..{hi} x {cols} columns; it holds {n} rows")
    return op, lo, hi, cols


def _plain_products(bfv: BfvContext, spec: ProductSpec, matrix: np.ndarray,
                    raw: dict[str, Any], encryptors: dict[str, Any],
                    compute: list[str]) -> dict[str, list[np.ndarray]]:
    """M Enc_i(V_i) +- R for both key holders, one plaintext NTT per block for both."""
    lay = spec.layout()
    mb_n, kb_n, pb_n = lay.blocks
    cts = {c: _load(bfv, raw[c], lay, c) for c in compute}
    bits = lay.flood_bits(spec.plain_bits, 1, 1)
    masks, noise = Prg(fresh_key()), Prg(fresh_key())
    positions = lay.positions
    out: dict[str, list[np.ndarray]] = {c: [] for c in compute}
    ev = bfv.evaluator
    for mb in range(mb_n):
        pts = [plain_coeffs(matrix, lay, mb, kb) for kb in range(kb_n)]
        ntts = [None if p is None else bfv.ntt_plaintext(p) for p in pts]
        for pb in range(pb_n):
            block = mb * pb_n + pb
            r = masks.words(POLY_DEGREE, block, 0) & T_MASK
            for i, c in enumerate(compute):
                acc = None
                for kb, pt in enumerate(ntts):
                    if pt is None:  # an all-zero block: SEAL refuses the transparent product
                        continue
                    term = ev.multiply_plain(cts[c][kb * pb_n + pb], pt)
                    if acc is None:
                        acc = term
                    else:
                        ev.add_inplace(acc, term)
                enc = encryptors[c]
                if acc is None:
                    acc = enc.encrypt_zero()
                mask = r if i == 0 else (np.uint64(0) - r) & T_MASK
                done = bfv.finish(acc, enc.encrypt_zero(), mask, bits, noise,
                                  2 * block + i, positions)
                out[c].append(bfv.compact(done, positions))
    return out


def _load(bfv: BfvContext, raw: Any, lay: MatrixLayout, party: str) -> list[Any]:
    _, kb_n, pb_n = lay.blocks
    if not isinstance(raw, list) or len(raw) != kb_n * pb_n or not all(
            isinstance(c, bytes | bytearray) for c in raw):
        raise VerticalError(f"party {party}: sent a malformed set of input ciphertexts "
                            f"(expected {kb_n * pb_n})")
    out = []
    for data in raw:
        ct = bfv.load_cipher(bytes(data), party)
        bfv.evaluator.transform_to_ntt_inplace(ct)
        out.append(ct)
    return out


def place(parts: dict[str, SecretTensor], order: Sequence[str]) -> SecretTensor:
    """The owners' blocks stacked in owner order (the backward first-layer gradient)."""
    blocks = [parts[o] for o in order]
    return concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
