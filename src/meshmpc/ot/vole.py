"""Silent VOLE over GF(2^128) and silent random OT (dual LPN, expand-accumulate code).

Papers: E. Boyle, G. Couteau, N. Gilboa, Y. Ishai, L. Kohl, P. Scholl,
"Efficient Pseudorandom Correlation Generators: Silent OT Extension and More",
CRYPTO 2019 (eprint 2019/448), the dual-LPN PCG with a punctured PRF (GGM
trees) per noise position; E. Boyle, G. Couteau, N. Gilboa, Y. Ishai, L. Kohl,
N. Resch, P. Scholl, "Correlated Pseudorandomness from Expand-Accumulate
Codes", CRYPTO 2022 (eprint 2022/1014), the compression H = B * A.
Security: semi-honest, static corruption, dual LPN over the EA code.

Roles: the *sender* holds delta in GF(2^128) (the delta of its SoftSpokenOT
COT sender, which also supplies every base correlation) and gets v; the
*receiver* gets (u, w) with

    w = v + u * delta   over GF(2^128), element-wise   (char 2: + is XOR).

``mode="vole"``: u uniform in GF(2^128)^n. ``mode="cot"``: u in {0, 1}
(silent correlated OT); :meth:`SilentVoleSender.rot` / receiver ``rot`` hash
it into random OT.

One batch of n outputs, N = t * L >= 2 n noise positions in t regions of
L = 2^d (regular noise, one point alpha_i per region with value beta_i):
  1. (vole mode) base VOLE for the betas: 128 COTs per region with the bits of
     beta_i as choices; delta_i = sum_j x^j t_ij, gamma_i = sum_j x^j q_ij so
     that delta_i = gamma_i + beta_i * delta.
  2. GGM tree per region (seed from the OS-seeded PRG, doubling with the
     tweakable CR hash under fixed-key AES); d chosen-message OTs per region
     carry the level sums of the side off the path to alpha_i.
  3. sender -> receiver: c_i = sum_j leaf_ij + gamma_i (cot mode: + delta).
  4. The receiver rebuilds every leaf but alpha_i, sets w[alpha_i] = c_i +
     sum_{j != alpha_i} leaf_ij (+ delta_i); now w = v + e * delta with e the
     sparse noise vector; both sides compress with H (C kernel mm_ea_compress).

LPN parameters: code rate 1/2 (N = 2n, at least 2 * 4096), EA row weight
``WEIGHT`` = 8, regular noise weight t >= ``MIN_NOISE`` = 398. The weight
follows the linear-test bound used for EA / expand-convolute codes
(t >= kappa / -log2(1 - 2 * rho) with kappa = 128 and minimum relative
distance rho = 0.1 assumed for the code, as in Raghuraman-Rindal-Tanguy,
CRYPTO 2023, and libOTe's regular-noise parameters); 128-bit security against
linear tests under that distance assumption. See protocols/vole.md.

Bytes per batch: vole mode 128 t SoftSpoken COTs (4 bytes each at k = 4) plus
t d chosen OTs (36 bytes each) plus 16 t; about 0.5 MB for n = 2^20.
"""

from __future__ import annotations

import math
import os

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.aes import FIXED_KEY_AES
from meshmpc.crypto.hashing import tccr_hash
from meshmpc.crypto.prg import Prg
from meshmpc.net.context import Context
from meshmpc.ot.errors import OtInputError, OtProtocolError
from meshmpc.ot.iknp import _in_thread
from meshmpc.ot.softspoken import SoftSpokenReceiver, SoftSpokenSender

U8 = npt.NDArray[np.uint8]
MIN_OUTPUTS = 4096
MIN_NOISE = 398
WEIGHT = 8
GGM_TWEAKS = 3 << 60
"""Tweak domain of the GGM doubling: apart from SoftSpoken's (2^62) and the OT hashes."""
ROT_TWEAKS = 5 << 59
CODE_KEY = _core.aes128_expand(b"meshmpc.vole.ea1")
"""Public key of the EA code's sparse matrix B (any fixed key: B is public)."""
MODES = ("vole", "cot")


def parameters(n: int) -> tuple[int, int]:
    """(regions t, depth d) for n outputs: t * 2^d >= 2 max(n, 4096), t >= 398."""
    target = 2 * max(n, MIN_OUTPUTS)
    depth = max(1, int(math.floor(math.log2(target / MIN_NOISE))))
    return -(-target // (1 << depth)), depth


def _xor_rows(nodes: U8) -> U8:
    """XOR over axis 1 of (t, k, 16) blocks: (t, 16)."""
    return np.bitwise_xor.reduce(nodes.view(np.uint64), axis=1).view(np.uint8)


def _expand(nodes: U8, depth: int) -> U8:
    """Children (t, 2k, 16) of nodes (t, k, 16): H(tweak, s) with one tweak per child."""
    t, k = nodes.shape[:2]
    doubled = np.repeat(nodes, 2, axis=1).reshape(-1, 16)
    return tccr_hash(doubled, GGM_TWEAKS + (depth << 40)).reshape(t, 2 * k, 16)


def ggm_leaves(roots: U8, depth: int) -> tuple[U8, U8]:
    """(leaves (t, 2^d, 16), level sums (t, d, 2, 16): XOR of even / odd nodes), in C."""
    t = roots.shape[0]
    leaves = np.empty((t, 1 << depth, 16), dtype=np.uint8)
    sums = np.empty((t, depth, 2, 16), dtype=np.uint8)
    _core.ggm_expand_into(FIXED_KEY_AES.round_keys, np.ascontiguousarray(roots), depth,
                          GGM_TWEAKS, leaves, sums)
    return leaves, sums


def punctured_leaves(alpha: npt.NDArray[np.int64], depth: int, sums: U8) -> U8:
    """Every leaf but alpha_i (left zero) from the off-path level sums (t, d, 16), in C."""
    leaves = np.empty((alpha.shape[0], 1 << depth, 16), dtype=np.uint8)
    _core.ggm_punctured_into(FIXED_KEY_AES.round_keys, np.ascontiguousarray(alpha),
                             np.ascontiguousarray(sums), depth, GGM_TWEAKS, leaves)
    return leaves


def ggm_leaves_reference(roots: U8, depth: int) -> tuple[U8, U8]:
    """numpy version of :func:`ggm_leaves` (tests compare the two)."""
    nodes = roots.reshape(-1, 1, 16)
    sums = np.empty((nodes.shape[0], depth, 2, 16), dtype=np.uint8)
    for level in range(1, depth + 1):
        nodes = _expand(nodes, level)
        sums[:, level - 1, 0] = _xor_rows(nodes[:, 0::2])
        sums[:, level - 1, 1] = _xor_rows(nodes[:, 1::2])
    return nodes, sums


def path_choices(alpha: npt.NDArray[np.int64], depth: int) -> U8:
    """OT choice per region and level (MSB first): the side off the path."""
    shifts = depth - np.arange(1, depth + 1)
    return (1 - ((alpha[:, None] >> shifts[None, :]) & 1)).astype(np.uint8)


def punctured_leaves_reference(alpha: npt.NDArray[np.int64], depth: int, sums: U8) -> U8:
    """numpy version of :func:`punctured_leaves` (tests compare the two)."""
    t = alpha.shape[0]
    rows = np.arange(t)
    nodes = np.zeros((t, 1, 16), dtype=np.uint8)
    for level in range(1, depth + 1):
        nodes = _expand(nodes, level)
        parent = alpha >> (depth - level + 1)
        nodes[rows, 2 * parent] = 0
        nodes[rows, 2 * parent + 1] = 0
        sibling = (alpha >> (depth - level)) ^ 1
        even, odd = _xor_rows(nodes[:, 0::2]), _xor_rows(nodes[:, 1::2])
        known = np.where((sibling & 1)[:, None] == 1, odd, even)
        nodes[rows, sibling] = sums[:, level - 1] ^ known
    return nodes


POWERS = np.zeros((128, 16), dtype=np.uint8)
POWERS[np.arange(128), np.arange(128) // 8] = (1 << (np.arange(128) % 8)).astype(np.uint8)
"""x^j as GF(2^128) elements, j = 0..127 (bit j of the little-endian block)."""


def gadget(rows: U8) -> U8:
    """sum_j x^j rows[i, j] for (t * 128, 16) rows: (t, 16)."""
    t = rows.shape[0] // 128
    prods = np.empty_like(rows)
    _core.gf128_mul_into(np.ascontiguousarray(rows), np.tile(POWERS, (t, 1)), prods)
    return _xor_rows(prods.reshape(t, 128, 16))


def threads() -> int:
    """Threads for the compression kernels: every core."""
    return os.cpu_count() or 1


def compress(full: U8, n: int) -> U8:
    """H * full for N rows of 1 or 2 blocks ((N, 16) or (N, 2, 16), consumed): n rows."""
    out = np.empty((n, *full.shape[1:]), dtype=np.uint8)
    _core.ea_compress_into(CODE_KEY, full, out, WEIGHT, nthreads=threads())
    return out


def compress_noise(alpha: npt.NDArray[np.int64], beta: U8, depth: int, n: int) -> U8:
    """H * e for the regular noise e (beta_i at row i 2^depth + alpha_i), never built:
    equal to :func:`compress` of e, at the cost of a table of t entries instead of N rows."""
    out = np.empty((n, 16), dtype=np.uint8)
    _core.ea_compress_regular_into(CODE_KEY, np.ascontiguousarray(alpha),
                                   np.ascontiguousarray(beta), depth, out, WEIGHT,
                                   nthreads=threads())
    return out


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise OtInputError(f"VOLE mode must be one of {MODES}, got {mode!r}")
    return mode


class SilentVoleSender:
    """Holds delta; gets v with the receiver's w = v + u * delta."""

    def __init__(self, cot: SoftSpokenSender, prg: Prg) -> None:
        self.cot, self.prg = cot, prg
        self.delta: U8 = cot.delta
        self.batches = 0

    @classmethod
    async def setup(cls, ctx: Context, peer: str, name: str = "vole") -> SilentVoleSender:
        """SoftSpokenOT set-up (its delta is the VOLE delta) with ``peer``."""
        return cls(await SoftSpokenSender.setup(ctx, peer, name=name), Prg())

    async def extend(self, n: int, mode: str = "vole") -> U8:
        """v (n, 16) for n correlations (the receiver calls extend(n, mode))."""
        _check_mode(mode)
        t, depth = parameters(n)
        gamma = gadget(await self.cot.cot(128 * t)) if mode == "vole" else self.delta
        leaves, sums = await _in_thread(ggm_leaves, self.prg.blocks(t), depth)
        await self.cot.send(sums[:, :, 0].reshape(-1, 16), sums[:, :, 1].reshape(-1, 16))
        tag = f"vole/{self.batches}"
        self.batches += 1
        await self.cot.ctx.send(self.cot.peer, tag, _xor_rows(leaves) ^ gamma)
        return await _in_thread(compress, leaves.reshape(-1, 16), n)

    async def rot(self, n: int) -> tuple[U8, U8]:
        """n silent random OTs: (m0, m1); the receiver gets m_{u_j}."""
        v = await self.extend(n, "cot")
        tweak = ROT_TWEAKS + (self.batches << 32)
        return tccr_hash(v, tweak), tccr_hash(v ^ self.delta, tweak)


class SilentVoleReceiver:
    """Gets (u, w) with w = v + u * delta."""

    def __init__(self, cot: SoftSpokenReceiver, prg: Prg) -> None:
        self.cot, self.prg = cot, prg
        self.batches = 0

    @classmethod
    async def setup(cls, ctx: Context, peer: str, name: str = "vole") -> SilentVoleReceiver:
        """SoftSpokenOT set-up with ``peer`` (who runs SilentVoleSender.setup)."""
        return cls(await SoftSpokenReceiver.setup(ctx, peer, name=name), Prg())

    async def extend(self, n: int, mode: str = "vole") -> tuple[U8, U8]:
        """(u, w), each (n, 16)."""
        _check_mode(mode)
        t, depth = parameters(n)
        leaves_n = 1 << depth
        alpha = (self.prg.uint64(t) % np.uint64(leaves_n)).astype(np.int64)
        if mode == "vole":
            beta = self.prg.blocks(t)
            beta[:, 0] |= (~beta.any(axis=1)).astype(np.uint8)  # nonzero
            bits = np.unpackbits(beta, axis=1, bitorder="little").reshape(-1)
            delta_i = gadget(await self.cot.cot(bits))
        else:
            beta = np.zeros((t, 16), dtype=np.uint8)
            beta[:, 0] = 1
            delta_i = np.zeros((t, 16), dtype=np.uint8)
        choices = path_choices(alpha, depth).reshape(-1)
        sums = (await self.cot.receive(choices)).reshape(t, depth, 16)
        tag = f"vole/{self.batches}"
        self.batches += 1
        c = await self.cot.ctx.recv(self.cot.peer, tag)
        if not isinstance(c, np.ndarray) or c.nbytes != 16 * t:
            raise OtProtocolError(self.cot.peer, f"VOLE corrections of wrong size in {tag}")
        leaves = await _in_thread(punctured_leaves, alpha, depth, sums)
        rows = np.arange(t)
        leaves[rows, alpha] = c.view(np.uint8).reshape(t, 16) ^ _xor_rows(leaves) ^ delta_i
        w = await _in_thread(compress, leaves.reshape(-1, 16), n)
        del leaves
        return await _in_thread(compress_noise, alpha, beta, depth, n), w

    async def rot(self, n: int) -> tuple[U8, U8]:
        """n silent random OTs: (choice bits (n,), m) with m = the sender's m_{choice}."""
        u, w = await self.extend(n, "cot")
        tweak = ROT_TWEAKS + (self.batches << 32)
        return u[:, 0].copy(), tccr_hash(w, tweak)
