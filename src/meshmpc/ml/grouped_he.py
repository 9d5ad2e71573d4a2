"""Per-bin sums of the bank's plaintext label over an owner's bin indices, by BFV.

The fast path of ``ml.binning``'s label counts (protocols/binning.md, "Grouped
sums by coefficient encoding"). Two parties per owner: the bank (key holder,
label y in the clear) and the owner (bin indices g, n x f, in the clear).

- The bank encrypts y in BFV coefficient encoding, K rows per ciphertext:
  ct_c = Enc(sum_r y_{cK+r} x^r), under a fresh key of this step.
- The owner gives each of its features ``n_bins - 1`` output slots (the last
  bin's count is the bank's total minus the others), packs several features
  into one plaintext of N/K slots, and for each block c and plaintext multiplies
  ct_c by P = sum_r x^{(slot(j, g_{cK+r, j})) K - r}: row r's label lands on
  coefficient slot*K; every cross term y_{r'} x^{slot K + r' - r} falls strictly
  between two slot positions (|r' - r| < K) and never reaches one. The products
  of all blocks are summed per plaintext.
- Before anything goes back the owner adds a fresh public-key encryption of 0
  (hides c1, a function of its plaintexts), floods the noise of the c0
  coefficients it returns (2^-40 statistical distance), and returns only c0 at
  the slot positions (plus all of c1): every other coefficient (the cross terms)
  is never sent, so the bank decrypts exactly the per-bin sums.

Parameters: N = 8192, q = two 60-bit data primes (plus a 60-bit special
prime: 180 bits, below the HE standard's 218 for 128-bit security at N = 8192),
t = 2^24 (counts below 2^24 rows). N = 4096 allows 109 bits in all, leaving
about 72 for data: too few for t plus the ~78-bit flooding at 10^6 rows.
Costs: ceil(n/K) ciphertexts from the bank, one plaintext product per block and
plaintext (about n * sum(n_bins - 1) / N in all), one ciphertext (c1 and a
few c0 words) back per plaintext. Hot loop: the owner's products run in the fused C
kernel of :mod:`meshmpc.ml.grouped_kernel` (csrc/bfv_sparse.c: plaintexts built from the
bin indices in place, NTT, 128-bit multiply-accumulate, every core); SEAL does the
scheme: keys, encryption, decryption and the check of every ciphertext received.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import seal

from meshmpc.ml.grouped_kernel import FusedProducts, bins_by_feature
from meshmpc.ml.product_he_owner import workers
from meshmpc.ml.product_he_seal import _CIPHER_HEAD, _PLAIN_HEAD, _SEAL_MAGIC
from meshmpc.mpc.errors import MpcError
from meshmpc.net import Context

POLY_DEGREE = 8192
PRIME_BITS = (60, 60, 60)
"""Two data primes and the special prime (SEAL takes the last as special)."""
PLAIN_BITS = 24
PLAIN_MODULUS = 1 << PLAIN_BITS
STAT_BITS = 40
NOISE_MAX = 6 * 3.2 + 1.0
"""SEAL's clipped-normal error bound (6 sigma) plus the encoding's rounding."""
CT_PER_MESSAGE = 32  # ~8 MB of input ciphertexts per message
GROUPS_PER_TASK = 8  # plaintexts per worker task (one result message each)
BLOCK_COST = 20.0
GROUP_COST = 10.0
"""Plan weights, in plaintext products: a label ciphertext (256 KiB sent, encrypted,
loaded, NTT) and a returned one (128 KiB, flooded, decrypted)."""


@dataclass(frozen=True)
class GroupLayout:
    """How an owner's features are packed: K rows per block, features per plaintext."""

    rows: int
    k: int
    slots: tuple[int, ...]  # per feature: output slots (n_bins - 1)
    groups: tuple[tuple[int, ...], ...]  # features of each plaintext
    offsets: tuple[int, ...]  # per feature: its first slot in its plaintext

    @property
    def blocks(self) -> int:
        return -(-self.rows // self.k)

    def positions(self, group: int) -> np.ndarray:
        """Coefficients holding the group's slots, in feature then bin order."""
        used = sum(self.slots[f] for f in self.groups[group])
        return np.arange(used, dtype=np.int64) * self.k

    @property
    def products(self) -> int:
        return self.blocks * len(self.groups)


def _pack(slots: Sequence[int], per_plain: int) -> tuple[list[tuple[int, ...]], list[int]]:
    groups: list[list[int]] = []
    offsets = [0] * len(slots)
    used = per_plain
    for f, width in enumerate(slots):
        if width == 0:
            continue
        if used + width > per_plain:
            groups.append([])
            used = 0
        groups[-1].append(f)
        offsets[f] = used
        used += width
    return [tuple(g) for g in groups], offsets


def plan(rows: int, n_groups: Sequence[int]) -> GroupLayout:
    """The block size K minimising products plus ciphertexts sent (public: both ends
    compute it from the row count and the announced bins per feature)."""
    if rows >= PLAIN_MODULUS:
        raise MpcError(f"the HE label counts handle fewer than {PLAIN_MODULUS} rows")
    slots = tuple(max(0, int(b) - 1) for b in n_groups)
    widest = max([*slots, 1])
    best: tuple[float, GroupLayout] | None = None
    for per_plain in range(widest, min(POLY_DEGREE, 8 * widest) + 1):
        k = POLY_DEGREE // per_plain
        groups, offsets = _pack(slots, per_plain)
        lay = GroupLayout(rows, k, slots, tuple(groups), tuple(offsets))
        cost = lay.products + BLOCK_COST * lay.blocks + GROUP_COST * len(groups)
        if best is None or cost < best[0]:
            best = (cost, lay)
    assert best is not None
    return best[1]


class GroupContext:
    """The BFV parameters of the label counts and numpy <-> SEAL conversions."""

    def __init__(self) -> None:
        parms = seal.EncryptionParameters(seal.scheme_type.bfv)
        parms.set_poly_modulus_degree(POLY_DEGREE)
        parms.set_coeff_modulus(seal.CoeffModulus.Create(POLY_DEGREE, list(PRIME_BITS)))
        parms.set_plain_modulus(PLAIN_MODULUS)
        self.context = seal.SEALContext(parms, True, seal.sec_level_type.tc128)
        if not self.context.parameters_set():
            raise MpcError(f"SEAL rejected the BFV parameters: "
                           f"{self.context.parameter_error_message()}")
        self.evaluator = seal.Evaluator(self.context)
        top = self.context.first_context_data()
        self.parms_id = top.parms_id()
        self.primes = np.array([m.value() for m in top.parms().coeff_modulus()], np.uint64)
        self._buf = np.empty(_PLAIN_HEAD + POLY_DEGREE, dtype=np.uint64)
        self._buf[:_PLAIN_HEAD] = (_SEAL_MAGIC, 8 * (_PLAIN_HEAD + POLY_DEGREE), 0, 0, 0, 0,
                                   POLY_DEGREE, np.float64(1.0).view(np.uint64), _SEAL_MAGIC,
                                   8 * (3 + POLY_DEGREE), POLY_DEGREE)
        self._template: bytes | None = None

    @property
    def q_bits(self) -> float:
        return float(sum(math.log2(int(p)) for p in self.primes))

    def plaintext(self, coeffs: np.ndarray) -> seal.Plaintext:
        self._buf[_PLAIN_HEAD:] = coeffs
        plain = seal.Plaintext()
        plain.load_bytes(self.context, self._buf.tobytes())
        return plain

    def load(self, data: bytes, peer: str) -> seal.Ciphertext:
        try:
            ct = self.context.from_cipher_str(bytes(data))
        except Exception as exc:  # SEAL raises ValueError/RuntimeError on bad data
            raise MpcError(f"party {peer}: a label ciphertext it sent does not load "
                           f"({exc})") from exc
        if ct.size() != 2 or ct.parms_id() != self.parms_id or ct.is_ntt_form():
            raise MpcError(f"party {peer}: a label ciphertext it sent is not a fresh one")
        return ct

    def words(self, ct: seal.Ciphertext) -> np.ndarray:
        """c0 and c1 of a ciphertext as a writable (2, primes, N) uint64 array."""
        raw = np.frombuffer(bytearray(ct.to_string(seal.compr_mode_type.none)), np.uint8)
        size = 16 * POLY_DEGREE * self.primes.size
        return raw[_CIPHER_HEAD:_CIPHER_HEAD + size].view(np.uint64).reshape(
            2, self.primes.size, POLY_DEGREE).copy()

    def decrypt(self, decryptor: seal.Decryptor, c0: np.ndarray, c1: np.ndarray,
                positions: np.ndarray) -> np.ndarray:
        """The plaintext coefficients at ``positions`` of (c0 at positions, all of c1)."""
        if self._template is None:
            keygen = seal.KeyGenerator(self.context)
            zero = seal.Encryptor(self.context, keygen.create_public_key()).encrypt_zero()
            self._template = bytes(zero.to_string(seal.compr_mode_type.none))
        raw = np.frombuffer(bytearray(self._template), np.uint8)
        size = 16 * POLY_DEGREE * self.primes.size
        data = raw[_CIPHER_HEAD:_CIPHER_HEAD + size].view(np.uint64).reshape(
            2, self.primes.size, POLY_DEGREE)
        data[0][...] = 0
        data[0][:, positions] = c0
        data[1][...] = c1
        plain = decryptor.decrypt(self.context.from_cipher_str(raw.tobytes()))
        coeffs = np.zeros(POLY_DEGREE, np.uint64)
        got = np.frombuffer(plain.to_bytes(seal.compr_mode_type.none), np.uint64)[_PLAIN_HEAD:]
        coeffs[:got.size] = got
        return coeffs[positions]


def flood_bits(lay: GroupLayout, q_bits: float) -> int:
    """Flooding width for the returned coefficients, checked against the modulus.

    The product noise of a slot is at most NOISE_MAX times the number of monomials
    summed into it (rows x features of its plaintext), plus the public-key zero
    encryption's (NOISE_MAX (2N + 1)); 2^STAT_BITS times that, union-bounded over
    every returned coefficient.
    """
    per_plain = max((len(g) for g in lay.groups), default=1)
    noise = NOISE_MAX * (lay.rows * per_plain + 2 * POLY_DEGREE + 1)
    returned = sum(lay.slots)
    bits = math.ceil(math.log2(noise) + STAT_BITS + math.log2(max(returned, 2)))
    if bits + PLAIN_BITS + 3 > q_bits:
        raise MpcError(f"HE label counts too large to flood: 2^{bits} noise and t = "
                       f"2^{PLAIN_BITS} exceed q = 2^{q_bits:.0f}; bin fewer rows at once")
    return bits


def block_coefficients(groups: np.ndarray, lay: GroupLayout, group: int, first: int,
                       stop: int) -> np.ndarray:
    """Plaintext coefficients (stop - first, N) of one plaintext for blocks first..stop:
    +1 at (offset + bin) K - r, or -1 (t - 1) at N - r for a negative exponent;
    rows in a feature's last bin contribute nothing."""
    k = lay.k
    lo, hi = first * k, min(stop * k, lay.rows)
    local = np.arange(hi - lo, dtype=np.int64)
    block, r = local // k, local % k
    out = np.zeros((stop - first, POLY_DEGREE), dtype=np.uint64)
    for f in lay.groups[group]:
        g = groups[lo:hi, f].astype(np.int64)
        keep = g < lay.slots[f]
        exp = (lay.offsets[f] + g[keep]) * k - r[keep]
        values = np.where(exp >= 0, np.uint64(1), np.uint64(PLAIN_MODULUS - 1))
        out[block[keep], exp % POLY_DEGREE] = values
    return out


# --- the owner's products, on the fused C kernel -------------------------------------
@dataclass
class OwnerState:
    """The owner's inputs: the bank's label ciphertexts in the kernel's NTT form
    (blocks, 2, L, N), its bin indices by feature, and the bank's public encryptor."""

    bfv: GroupContext
    fused: FusedProducts
    ct_ntt: np.ndarray
    encryptor: seal.Encryptor
    bins: np.ndarray
    lay: GroupLayout
    bits: int


def _noise(count: int, bits: int, primes: np.ndarray) -> np.ndarray:
    """Uniform integers in [-2^bits, 2^bits) from the OS, reduced mod each prime."""
    words = (bits + 1 + 63) // 64
    raw = np.frombuffer(os.urandom(8 * words * count), np.uint64).reshape(count, words)
    out = np.empty((primes.size, count), dtype=np.uint64)
    span = 1 << (bits + 1)
    values = [(sum(int(w) << (64 * i) for i, w in enumerate(row)) % span) - (span >> 1)
              for row in raw]
    for i, p in enumerate(primes.tolist()):
        out[i] = [v % p for v in values]
    return out


def finish_group(state: OwnerState, group: int, words: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(c0 at the slot positions, c1) of one plaintext's sum (coefficient form words
    (2, L, N)), re-randomised by a fresh encryption of 0 and noise-flooded."""
    zero = state.bfv.words(state.encryptor.encrypt_zero())
    p = state.bfv.primes[:, None]
    total = (words + zero) % p[None]  # both < p: no overflow
    positions = state.lay.positions(group)
    c0 = (total[0][:, positions] + _noise(positions.size, state.bits, state.bfv.primes)) % p
    return c0, total[1]


def compute_groups(state: OwnerState, first: int, stop: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(c0 at the slot positions, c1) of plaintexts first..stop, masked and flooded."""
    sums = state.fused.group_sums(state.ct_ntt, state.bins, state.lay, first, stop, workers())
    return [finish_group(state, g, sums[g - first]) for g in range(first, stop)]


async def _receive_inputs(ctx: Context, bank: str, bfv: GroupContext, fused: FusedProducts,
                          lay: GroupLayout) -> np.ndarray:
    """The bank's label ciphertexts, each checked by SEAL, as one (blocks, 2, L, N)
    array in the kernel's NTT form (brought there batch by batch, off the event loop)."""
    out = np.empty((lay.blocks, 2, bfv.primes.size, POLY_DEGREE), dtype=np.uint64)
    for start in range(0, lay.blocks, CT_PER_MESSAGE):
        raw = await ctx.recv(bank, f"y/{start}")
        expected = min(CT_PER_MESSAGE, lay.blocks - start)
        if not isinstance(raw, list) or len(raw) != expected:
            raise MpcError(f"party {bank}: sent a malformed batch of label ciphertexts")
        for i, data in enumerate(raw):
            out[start + i] = bfv.words(bfv.load(data, bank))
        await asyncio.to_thread(fused.to_ntt, out[start:start + expected])
    return out


async def owner_side(ctx: Context, bank: str, groups: np.ndarray,
                     n_groups: Sequence[int]) -> None:
    """The owner's part: receive the bank's key and label ciphertexts, return one
    masked, flooded ciphertext per plaintext of features."""
    n = groups.shape[0]
    lay = plan(n, n_groups)
    bfv = GroupContext()
    bits = flood_bits(lay, bfv.q_bits)
    public = await ctx.recv(bank, "pk")
    try:
        key = bfv.context.from_public_str(bytes(public))
    except Exception as exc:
        raise MpcError(f"party {bank}: its HE public key does not load ({exc})") from exc
    fused = FusedProducts(bfv.primes, POLY_DEGREE)
    ct_ntt = await _receive_inputs(ctx, bank, bfv, fused, lay)
    state = OwnerState(bfv, fused, ct_ntt, seal.Encryptor(bfv.context, key),
                       bins_by_feature(groups), lay, bits)
    for first in range(0, len(lay.groups), GROUPS_PER_TASK):
        stop = min(first + GROUPS_PER_TASK, len(lay.groups))
        results = await asyncio.to_thread(compute_groups, state, first, stop)
        await ctx.send(bank, f"out/{first}", _flat(results))


def _flat(results: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    return [a for pair in results for a in pair]


# --- the bank ----------------------------------------------------------------------------
class BankEncryption:
    """The bank's fresh key of this step and its label encrypted per block size."""

    def __init__(self, y: np.ndarray) -> None:
        self.bfv = GroupContext()
        keygen = seal.KeyGenerator(self.bfv.context)
        secret = keygen.secret_key()
        self.public = bytes(keygen.create_public_key().to_string())
        self.encryptor = seal.Encryptor(self.bfv.context, self.public_key(), secret)
        self.decryptor = seal.Decryptor(self.bfv.context, secret)
        self.y = np.asarray(y, dtype=np.uint64)
        self._cts: dict[int, list[bytes]] = {}

    def public_key(self) -> seal.PublicKey:
        return self.bfv.context.from_public_str(self.public)

    def blocks(self, k: int) -> list[bytes]:
        """The label in blocks of k rows, each a symmetric encryption (cached per k)."""
        if k not in self._cts:
            n = self.y.size
            cts = []
            for lo in range(0, n, k):
                coeffs = np.zeros(POLY_DEGREE, np.uint64)
                part = self.y[lo:lo + k]
                coeffs[:part.size] = part
                ct = self.encryptor.encrypt_symmetric(self.bfv.plaintext(coeffs))
                cts.append(bytes(ct.to_string(seal.compr_mode_type.none)))
            self._cts[k] = cts
        return self._cts[k]


async def bank_send(ctx: Context, owner: str, enc: BankEncryption,
                    n_groups: Sequence[int]) -> GroupLayout:
    """Send one owner the public key and the label ciphertexts for its layout."""
    lay = plan(enc.y.size, n_groups)
    await ctx.send(owner, "pk", enc.public)
    cts = enc.blocks(lay.k)
    for start in range(0, len(cts), CT_PER_MESSAGE):
        await ctx.send(owner, f"y/{start}", cts[start:start + CT_PER_MESSAGE])
    return lay


async def bank_receive(ctx: Context, owner: str, enc: BankEncryption, lay: GroupLayout,
                       n_groups: Sequence[int]) -> np.ndarray:
    """The owner's bad count per fine bin (all bins, its layout order)."""
    slot_sums: list[np.ndarray] = []
    primes = enc.bfv.primes[:, None]
    for first in range(0, len(lay.groups), GROUPS_PER_TASK):
        stop = min(first + GROUPS_PER_TASK, len(lay.groups))
        got = await ctx.recv(owner, f"out/{first}")
        if not isinstance(got, list) or len(got) != 2 * (stop - first):
            raise MpcError(f"party {owner}: sent a malformed batch of count ciphertexts")
        for i, group in enumerate(range(first, stop)):
            positions = lay.positions(group)
            c0, c1 = got[2 * i], got[2 * i + 1]
            for a, shape in ((c0, (primes.size, positions.size)),
                             (c1, (primes.size, POLY_DEGREE))):
                if not isinstance(a, np.ndarray) or a.dtype != np.uint64 or a.shape != shape \
                        or bool(np.any(a >= primes)):
                    raise MpcError(f"party {owner}: a count ciphertext has the wrong size, "
                                   f"type or range")
            slot_sums.append(enc.bfv.decrypt(enc.decryptor, c0, c1, positions))
    return _bins_from_slots(lay, n_groups, slot_sums, int(enc.y.sum()))


def _bins_from_slots(lay: GroupLayout, n_groups: Sequence[int], slot_sums: list[np.ndarray],
                     total: int) -> np.ndarray:
    where: dict[int, tuple[int, int]] = {}
    for g, features in enumerate(lay.groups):
        start = 0
        for f in features:
            where[f] = (g, start)
            start += lay.slots[f]
    out = []
    for f in range(len(n_groups)):
        if lay.slots[f] == 0:
            out.append(np.array([total], dtype=np.int64))  # a single bin holds every row
            continue
        g, start = where[f]
        sums = slot_sums[g][start:start + lay.slots[f]].astype(np.int64)
        out.append(np.concatenate([sums, [total - int(sums.sum())]]))
    return np.concatenate(out) if out else np.zeros(0, np.int64)
