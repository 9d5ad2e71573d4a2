"""Two-party matrix x matrix products under BFV with coefficient encoding, every column at once.

Security model: semi-honest, two parties, no dealer. One party (the *key holder*)
encrypts matrices E_c (k x p, entries mod t) under its own BFV key; the other
(the *plain side*) holds small integer matrices P_l (m x k) in plaintext,
multiplies, sums, masks with a uniform R mod t, re-randomises with a fresh
public-key encryption of zero, floods the noise (2^-40 statistical distance)
and returns the results. The key holder decrypts sum P_l E_c + R (uniform mod t,
so it learns nothing); the plain side keeps -R and saw only RLWE ciphertexts.
All lattice operations are SEAL's (:mod:`meshmpc.ml.product_he_seal`).

Encoding (Cheetah's HomFC, Huang et al. USENIX Security 2022, extended to many
columns as in BumbleBee, Lu et al. NDSS 2025): blocks of m_w x k_w (plain) and
k_w x p_w (cipher) with m_w k_w p_w <= N,

    cipher block  b(X) = sum_{t, j} E[t, j] X^(j k_w + t)
    plain block   a(X) = sum_{i, t} P[i, t] X^(i k_w p_w + k_w - 1 - t)

so the coefficient of X^(i k_w p_w + j k_w + k_w - 1) of a * b is sum_t P[i, t] E[t, j]
(no other pair of terms reaches such a degree, and the negacyclic wrap-around
lands on degrees below k_w - 1). One ciphertext-plaintext product computes an
m_w x p_w block of the result: m k p / N products for the whole matrix, and
the result ciphertexts carry m_w p_w useful coefficients each.

Rings: t = 2^59 and the suite works mod 2^64. :func:`cross_term` gives shares
of A @ B mod 2^64 for A (m x k) at one party and B (k x p) at the other, both
uniform 64-bit words (the cross terms of a matrix Beaver triple), from

    A = a0 + 2^32 a1  (signed 32-bit limbs: small plaintexts, bounded noise)
    B = 2^5 b_hi + b_lo  (b_lo < 32)
    A B = 2^5 (a0 b_hi + a1 (2^27 B)) + a0 b_lo  (mod 2^64)

The first group is computed mod t and multiplied by 2^5 after decryption, which
is exact mod 2^64 (2^5 t = 2^64); the second is small (|a0 b_lo| < 2^36 k) and
lifted from mod t to mod 2^64 by one correlated OT per entry (the lift of
:mod:`meshmpc.ml.product_he`). Costs per cross term: 3 uploaded ciphertext sets,
3 m k p / N ciphertext-plaintext products, 2 returned sets.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meshmpc.ml.product_he_seal import (
    DATA_PRIME_BITS,
    PLAIN_BITS,
    POLY_DEGREE,
    STAT_BITS,
    BfvContext,
    HeKeys,
)
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.net import Context
from meshmpc.ot import OtPool

T_MASK = np.uint64((1 << PLAIN_BITS) - 1)
GROUP_SHIFT = 64 - PLAIN_BITS  # 5: a result mod t shifted by 5 is exact mod 2^64
LIMB_BITS = 32
NOISE_ROOM = sum(DATA_PRIME_BITS) - PLAIN_BITS - 3
"""Bits of noise the top level leaves after flooding (as in product_he_seal.flood_bits)."""
FRESH_NOISE = 6 * 3.2 + 1.0  # fresh symmetric noise clipped at 6 sigma, plus encoding rounding
CIPHER_BYTES = 2 * POLY_DEGREE * len(DATA_PRIME_BITS) * 8


@dataclass(frozen=True)
class MatrixLayout:
    """Blocks of one product (m x k) @ (k x p): plain m_w x k_w, cipher k_w x p_w."""

    m: int
    k: int
    p: int
    m_w: int
    k_w: int
    p_w: int

    @property
    def blocks(self) -> tuple[int, int, int]:
        return -(-self.m // self.m_w), -(-self.k // self.k_w), -(-self.p // self.p_w)

    @property
    def positions(self) -> np.ndarray:
        """Coefficients of the m_w x p_w results (row-major i, j) in a product block."""
        i = np.arange(self.m_w, dtype=np.int64)[:, None] * (self.k_w * self.p_w)
        j = np.arange(self.p_w, dtype=np.int64)[None, :] * self.k_w
        return (i + j + self.k_w - 1).reshape(-1)

    def cost(self, uploads: int, outputs: int) -> float:
        """Bytes of one product: uploaded full ciphertexts plus compacted results."""
        mb, kb, pb = self.blocks
        sent_in = uploads * kb * pb * CIPHER_BYTES
        sent_out = outputs * mb * pb * (POLY_DEGREE + self.m_w * self.p_w) * 16
        return float(sent_in + sent_out)

    def flood_bits(self, plain_bits: int, terms: int, outputs: int) -> int:
        """2^STAT_BITS times the product noise, union-bounded over the revealed coefficients.

        Noise of sum over terms and k-blocks of ct * pt: at most FRESH_NOISE times the
        plaintexts' l1 norm, terms * k * m_w * 2^plain_bits (each block has m_w k_w entries).
        """
        mb, _, pb = self.blocks
        noise = math.log2(FRESH_NOISE * terms * self.m_w * max(self.k, 1)) + plain_bits
        revealed = outputs * mb * pb * self.m_w * self.p_w
        return math.ceil(noise + STAT_BITS + math.log2(max(revealed, 2)))


def choose_matrix_layout(m: int, k: int, p: int, uploads: int, outputs: int,
                         plain_bits: int, terms: int) -> MatrixLayout:
    """The feasible block shape (powers of two) that sends the fewest bytes."""
    best: tuple[float, MatrixLayout] | None = None
    for k_w in _powers(k):
        for p_w in _powers(p):
            if k_w * p_w > POLY_DEGREE:
                continue
            m_w = min(POLY_DEGREE // (k_w * p_w), _ceil_pow2(m))
            lay = MatrixLayout(m, k, p, m_w, k_w, p_w)
            if lay.flood_bits(plain_bits, terms, outputs) > NOISE_ROOM:
                continue
            cost = lay.cost(uploads, outputs)
            if best is None or cost < best[0]:
                best = (cost, lay)
    if best is None:
        raise MpcError(f"HE matrix product ({m} x {k}) @ ({k} x {p}) cannot be flooded "
                       f"within the BFV parameters; split the inner dimension")
    return best[1]


def _ceil_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _powers(n: int) -> list[int]:
    return [1 << i for i in range(_ceil_pow2(n).bit_length())]


def cipher_coeffs(e: np.ndarray, lay: MatrixLayout, kb: int, pb: int) -> np.ndarray:
    """Coefficients of the (kb, pb) cipher block: E[t, j] at j k_w + t (mod t)."""
    block = np.zeros((lay.p_w, lay.k_w), dtype=np.uint64)
    part = e[kb * lay.k_w:(kb + 1) * lay.k_w, pb * lay.p_w:(pb + 1) * lay.p_w]
    block[: part.shape[1], : part.shape[0]] = part.T
    out = np.zeros(POLY_DEGREE, dtype=np.uint64)
    out[: block.size] = block.reshape(-1) & T_MASK
    return out


def plain_coeffs(a: np.ndarray, lay: MatrixLayout, mb: int, kb: int) -> np.ndarray | None:
    """Coefficients of the (mb, kb) plain block: P[i, t] at i k_w p_w + k_w - 1 - t.

    ``a`` is int64; negative entries become t - |x| (SEAL lifts them centred)."""
    part = a[mb * lay.m_w:(mb + 1) * lay.m_w, kb * lay.k_w:(kb + 1) * lay.k_w]
    if not part.any():
        return None
    block = np.zeros((lay.m_w, lay.p_w * lay.k_w), dtype=np.int64)
    block[: part.shape[0], lay.k_w - part.shape[1]: lay.k_w] = part[:, ::-1]
    out = np.zeros(POLY_DEGREE, dtype=np.uint64)
    out[: block.size] = block.reshape(-1).view(np.uint64) & T_MASK
    return out


@dataclass(frozen=True)
class ProductSpec:
    """One HE product: which plaintexts multiply which ciphertexts, summed per group.

    ``groups[g]`` lists (plain index, cipher index) pairs whose products are summed
    into result group g; ``plain_bits`` bounds |P_l| < 2^plain_bits."""

    m: int
    k: int
    p: int
    ciphers: int
    groups: tuple[tuple[tuple[int, int], ...], ...]
    plain_bits: int

    def layout(self) -> MatrixLayout:
        terms = max(len(g) for g in self.groups)
        return choose_matrix_layout(self.m, self.k, self.p, self.ciphers, len(self.groups),
                                    self.plain_bits, terms)


class HeMatrixEngine:
    """One party's SEAL state for matrix products with one peer (keys, peer's encryptor)."""

    def __init__(self, ctx: Context, peer: str) -> None:
        self.ctx, self.peer = ctx, peer
        self.bfv = BfvContext()
        self.keys: HeKeys | None = None
        self.peer_encryptor: Any = None

    async def setup(self) -> None:
        """Exchange BFV public keys (once)."""
        if self.keys is not None:
            return
        self.keys, public = self.bfv.keygen()
        setup = self.ctx.scope("he-matrix-setup")
        await setup.send(self.peer, "pk", public)
        theirs = await setup.recv(self.peer, "pk")
        if not isinstance(theirs, bytes | bytearray):
            raise MpcError(f"party {self.peer}: sent no HE public key")
        self.peer_encryptor = self.bfv.public_encryptor(bytes(theirs), self.peer)

    # --- key holder ------------------------------------------------------------------
    async def key_side(self, ctx: Context, spec: ProductSpec,
                       ciphers: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Encrypt E_c, receive the masked results: per group (m x p) words mod t."""
        assert self.keys is not None
        lay = spec.layout()
        mb_n, kb_n, pb_n = lay.blocks
        cts = [self.bfv.encrypt_coeffs(self.keys, cipher_coeffs(e, lay, kb, pb))
               for e in ciphers for kb in range(kb_n) for pb in range(pb_n)]
        await ctx.send(self.peer, "in", cts)
        raw = await ctx.recv(self.peer, "out")
        expected = len(spec.groups) * mb_n * pb_n
        if not isinstance(raw, list) or len(raw) != expected:
            raise MpcError(f"party {self.peer}: sent {len(raw) if isinstance(raw, list) else 0}"
                           f" result ciphertexts, expected {expected}")
        positions = lay.positions
        width = 2 * (positions.size + POLY_DEGREE)
        out = []
        for g in range(len(spec.groups)):
            full = np.zeros((mb_n * lay.m_w, pb_n * lay.p_w), dtype=np.uint64)
            for mb in range(mb_n):
                for pb in range(pb_n):
                    words = np.asarray(raw[(g * mb_n + mb) * pb_n + pb])
                    if words.dtype != np.uint64 or words.shape != (width,):
                        raise MpcError(f"party {self.peer}: a result ciphertext has the wrong "
                                       f"size or type")
                    values = self.bfv.decrypt_compact(self.keys, words, positions)
                    full[mb * lay.m_w:(mb + 1) * lay.m_w, pb * lay.p_w:(pb + 1) * lay.p_w] = \
                        values.reshape(lay.m_w, lay.p_w)
            out.append(full[: spec.m, : spec.p])
        return out

    # --- plain side ------------------------------------------------------------------
    async def plain_side(self, ctx: Context, spec: ProductSpec, plains: Sequence[np.ndarray],
                         own: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Multiply the received E_c (plus ``own``, added in plaintext) by P_l; per group
        this party's share -R (m x p words mod t)."""
        lay = spec.layout()
        mb_n, kb_n, pb_n = lay.blocks
        raw = await ctx.recv(self.peer, "in")
        expected = spec.ciphers * kb_n * pb_n
        if not isinstance(raw, list) or len(raw) != expected or not all(
                isinstance(c, bytes | bytearray) for c in raw):
            raise MpcError(f"party {self.peer}: sent a malformed set of input ciphertexts "
                           f"(expected {expected})")
        cts = self._load(raw, lay, spec.ciphers, own)
        bits = lay.flood_bits(spec.plain_bits, max(len(g) for g in spec.groups),
                              len(spec.groups))
        prg, nonce = Prg(fresh_key()), 0
        words: list[np.ndarray] = []
        shares = [np.zeros((mb_n * lay.m_w, pb_n * lay.p_w), np.uint64) for _ in spec.groups]
        results: list[list[np.ndarray]] = [[] for _ in spec.groups]
        for mb in range(mb_n):
            pts = [[self._ntt_plain(plain_coeffs(a, lay, mb, kb)) for kb in range(kb_n)]
                   for a in plains]
            for pb in range(pb_n):
                for g, group in enumerate(spec.groups):
                    nonce += 1
                    acc = self._accumulate(group, pts, cts, pb, kb_n, pb_n)
                    word, share = self._finish(acc, lay, bits, prg, nonce)
                    results[g].append(word)
                    shares[g][mb * lay.m_w:(mb + 1) * lay.m_w,
                              pb * lay.p_w:(pb + 1) * lay.p_w] = share.reshape(lay.m_w, lay.p_w)
            await asyncio.sleep(0)
        for group_words in results:
            words.extend(group_words)
        await ctx.send(self.peer, "out", words)
        return [s[: spec.m, : spec.p] for s in shares]

    def _load(self, raw: list[Any], lay: MatrixLayout, count: int,
              own: Sequence[np.ndarray] | None) -> list[Any]:
        ev = self.bfv.evaluator
        _, kb_n, pb_n = lay.blocks
        out = []
        for c in range(count):
            for kb in range(kb_n):
                for pb in range(pb_n):
                    ct = self.bfv.load_cipher(raw[(c * kb_n + kb) * pb_n + pb], self.peer)
                    if own is not None:
                        ev.add_plain_inplace(ct, self.bfv.plaintext(
                            cipher_coeffs(own[c], lay, kb, pb)))
                    ev.transform_to_ntt_inplace(ct)
                    out.append(ct)
        return out

    def _ntt_plain(self, coeffs: np.ndarray | None) -> Any:
        return None if coeffs is None else self.bfv.ntt_plaintext(coeffs)

    def _accumulate(self, group: Sequence[tuple[int, int]], pts: list[list[Any]],
                    cts: list[Any], pb: int, kb_n: int, pb_n: int) -> Any:
        ev, acc = self.bfv.evaluator, None
        for plain, cipher in group:
            for kb in range(kb_n):
                pt = pts[plain][kb]
                if pt is None:  # an all-zero block: SEAL refuses the transparent product
                    continue
                term = ev.multiply_plain(cts[(cipher * kb_n + kb) * pb_n + pb], pt)
                if acc is None:
                    acc = term
                else:
                    ev.add_inplace(acc, term)
        return acc

    def _finish(self, acc: Any, lay: MatrixLayout, bits: int, prg: Prg,
                nonce: int) -> tuple[np.ndarray, np.ndarray]:
        encryptor = self.peer_encryptor
        if acc is None:
            acc = encryptor.encrypt_zero()
        mask = prg.words(POLY_DEGREE, nonce, 0) & T_MASK
        positions = lay.positions
        out = self.bfv.finish(acc, encryptor.encrypt_zero(), mask, bits, prg, nonce, positions)
        share = (np.uint64(0) - mask[positions]) & T_MASK
        return self.bfv.compact(out, positions), share


# --- the cross term of a matrix triple ------------------------------------------------
def signed_limbs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a = a0 + 2^32 a1 (mod 2^64) with a0 in [-2^31, 2^31) and a1 in [-2^31, 2^31]."""
    signed = a.view(np.int64)
    low = ((signed + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)
    high = (signed - low) >> 32
    return low.astype(np.int64), high.astype(np.int64)


def cipher_parts(b: np.ndarray) -> list[np.ndarray]:
    """[2^27 B mod t, B >> 5, B & 31]: the key holder's three encrypted matrices."""
    return [(b << np.uint64(LIMB_BITS - GROUP_SHIFT)) & T_MASK, b >> np.uint64(GROUP_SHIFT),
            b & np.uint64((1 << GROUP_SHIFT) - 1)]


TRIPLE_GROUPS = (((0, 1), (1, 0)), ((0, 2),))
"""Group 0: a0 b_hi + a1 (2^27 B), shifted by 5 after decryption; group 1: a0 b_lo, lifted."""


def cross_spec(m: int, k: int, p: int) -> ProductSpec:
    return ProductSpec(m, k, p, 3, TRIPLE_GROUPS, LIMB_BITS - 1)


def transposed(m: int, k: int, p: int) -> bool:
    """Whether computing (B^T A^T) sends fewer bytes than A B (both parties agree)."""
    costs = []
    for spec in (cross_spec(m, k, p), cross_spec(p, k, m)):
        try:
            costs.append(spec.layout().cost(3, 2))
        except MpcError:
            costs.append(math.inf)
    if math.isinf(min(costs)):
        raise MpcError(f"HE matrix triple ({m} x {k}) @ ({k} x {p}): no block shape keeps the "
                       f"flooded noise within the BFV parameters; split the inner dimension")
    return costs[1] < costs[0]


async def cross_term(engine: HeMatrixEngine, pool: OtPool, holds_left: bool,
                     factor: np.ndarray, shape: tuple[int, int, int], tag: str) -> np.ndarray:
    """This party's share of A @ B mod 2^64 where one party holds A (m x k) and the
    other B (k x p), uniform uint64 words; ``factor`` is this party's matrix and
    ``tag`` names the product the same way at both parties."""
    m, k, p = shape
    flip = transposed(m, k, p)
    if flip:
        factor = np.ascontiguousarray(factor.T)
        m, p = p, m
    plain = holds_left != flip
    spec = cross_spec(m, k, p)
    ctx = engine.ctx.scope(f"he-matrix/{tag}")
    if plain:
        a0, a1 = signed_limbs(np.ascontiguousarray(factor))
        shifted, small = await engine.plain_side(ctx, spec, [a0, a1])
        share = (shifted << np.uint64(GROUP_SHIFT)) + await lift_sender(pool, small)
    else:
        shifted, small = await engine.key_side(ctx, spec, cipher_parts(factor))
        share = (shifted << np.uint64(GROUP_SHIFT)) + await lift_receiver(pool, small)
    return np.ascontiguousarray(share.T) if flip else share


OFFSET = np.uint64(1 << (PLAIN_BITS - 2))  # |Y| < 2^57: Y + 2^57 lies in [0, 2^58)


async def lift_sender(pool: OtPool, o: np.ndarray) -> np.ndarray:
    """The plain side's lift of mod-t shares of |Y| < 2^57 to Z_2^64 (``o`` = -R mod t).

    With a = o + 2^57 and the key holder's b (a + b = Y + 2^57 + 2^59 w), the wrap w is
    the OR of the two top bits (bit 58): w = alpha + beta - alpha beta, and alpha beta
    comes from one correlated OT (sender inputs 2^59 alpha, the receiver chooses beta).
    """
    a = (o.reshape(-1) + OFFSET) & T_MASK
    alpha = a >> np.uint64(PLAIN_BITS - 1)
    rho = await pool.sender.send_correlated(alpha << np.uint64(PLAIN_BITS))
    out = a - (alpha << np.uint64(PLAIN_BITS)) - np.asarray(rho, np.uint64) - OFFSET
    return out.reshape(o.shape)


async def lift_receiver(pool: OtPool, b: np.ndarray) -> np.ndarray:
    """The key holder's side of :func:`lift_sender` (``b`` = Y + R mod t)."""
    flat = b.reshape(-1)
    beta = flat >> np.uint64(PLAIN_BITS - 1)
    y = await pool.receiver.receive_correlated(beta.astype(np.uint8))
    return (flat - (beta << np.uint64(PLAIN_BITS)) + np.asarray(y, np.uint64)).reshape(b.shape)
