"""SoftSpokenOT: correlated OT with 128/k bits per OT instead of IKNP's 128.

Paper: L. Roy, "SoftSpokenOT: Quieter OT Extension from Small-Field Silent
VOLE in the Minicrypt Model", CRYPTO 2022 (eprint 2022/192); the semi-honest
protocol with the repetition code. Security: semi-honest, static corruption;
128 base OTs (:mod:`meshmpc.ot.base`); AES-CTR as the leaf PRG; the GGM trees
double seeds with the tweakable correlation-robust hash (GKWY20) under
fixed-key AES, H(tweak, s) for tweak = 2^62 + depth * 2^20 + position (all
distinct, and apart from the tweaks of the random-OT hashes).

Set-up (once per direction), c = 128 / k chunks of 2^k leaves:
  base OTs: extension receiver sends, extension sender receives with
    choices "not the path bit" of its delta chunk at every depth;
  receiver -> sender: for every chunk and depth the XOR of the even and of
    the odd nodes, each masked with one base-OT key (c * k * 32 bytes);
  the sender rebuilds every leaf except leaf delta_i of chunk i.
Per batch of m OTs, one message receiver -> sender of c rows of m bits
(128 / k bits per OT; k = 4 gives 4 bytes per OT); the C kernel
(csrc/kernels_softspoken.c) computes the small-field VOLE sums and the
transpose, with q_j = t_j ^ r_j delta exactly as IKNP gives.
Cost per OT and side: 2^k / k AES blocks and about 2^(k+1) * 16 / k bytes of XOR.

The classes subclass :class:`~meshmpc.ot.iknp.CotSender` /
:class:`~meshmpc.ot.iknp.CotReceiver`, so random, chosen, arithmetic OT and
the pre-computed stock work unchanged on top.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.hashing import tccr_hash
from meshmpc.crypto.prg import Prg
from meshmpc.net.context import Context
from meshmpc.ot.base import base_ot_receive, base_ot_send
from meshmpc.ot.errors import OtInputError, OtProtocolError
from meshmpc.ot.iknp import (
    CHUNK_OTS,
    KAPPA,
    CotReceiver,
    CotSender,
    EachChunk,
    _in_thread,
    _pad128,
    chunk_rows,
)

DEFAULT_K = 4
# CHUNK_OTS comes from iknp: the shared receiver extension loop and this sender must agree.
GGM_TWEAKS = 1 << 62
"""Tweak domain of the GGM doubling, apart from the OT hashes (which count from 0)."""

U8 = npt.NDArray[np.uint8]


def _check_k(k: int) -> int:
    if k not in (1, 2, 4, 8):
        raise OtInputError(f"SoftSpoken k must be 1, 2, 4 or 8, got {k}")
    return k


def _expand(nodes: U8, depth: int) -> U8:
    """Children (c, 2N, 16) of nodes (c, N, 16): H(tweak, s), one tweak per child."""
    c, count = nodes.shape[:2]
    doubled = np.repeat(nodes, 2, axis=1).reshape(-1, 16)
    return tccr_hash(doubled, GGM_TWEAKS + (depth << 20)).reshape(c, 2 * count, 16)


def _delta_chunks(delta_bits: U8, k: int) -> npt.NDArray[np.int64]:
    """delta_i = bits ik..ik+k-1 of delta as integers (bit l of delta_i = bit ik+l)."""
    weights = (1 << np.arange(k, dtype=np.int64))
    return (delta_bits.reshape(-1, k).astype(np.int64) * weights).sum(axis=1)


def _puncture_choices(path: npt.NDArray[np.int64], k: int) -> U8:
    """Base-OT choice of chunk i at depth d: the sibling side of the path node."""
    depths = np.arange(1, k + 1)
    bits = (path[:, None] >> (k - depths)[None, :]) & 1
    return (1 - bits).astype(np.uint8).reshape(-1)


def _receiver_trees(roots: U8, k: int, keys0: U8, keys1: U8) -> tuple[U8, U8]:
    """(leaves (c * 2^k, 16), masked level sums (c, k, 2, 16)) of the GGM trees."""
    c = roots.shape[0]
    nodes = roots.reshape(c, 1, 16)
    sums = np.empty((c, k, 2, 16), dtype=np.uint8)
    for depth in range(1, k + 1):
        nodes = _expand(nodes, depth)
        sums[:, depth - 1, 0] = np.bitwise_xor.reduce(nodes[:, 0::2], axis=1)
        sums[:, depth - 1, 1] = np.bitwise_xor.reduce(nodes[:, 1::2], axis=1)
    sums[:, :, 0] ^= keys0.reshape(c, k, 16)
    sums[:, :, 1] ^= keys1.reshape(c, k, 16)
    return nodes.reshape(-1, 16), sums


def _sender_trees(path: npt.NDArray[np.int64], k: int, keys: U8, sums: U8) -> U8:
    """Every leaf but leaf path[i] of chunk i (that one left zero): (c * 2^k, 16)."""
    c = path.shape[0]
    rows = np.arange(c)
    keys = keys.reshape(c, k, 16)
    nodes = np.zeros((c, 1, 16), dtype=np.uint8)
    for depth in range(1, k + 1):
        nodes = _expand(nodes, depth)
        parent = path >> (k - depth + 1)
        nodes[rows, 2 * parent] = 0  # children of the unknown path node
        nodes[rows, 2 * parent + 1] = 0
        on_path = path >> (k - depth)
        sibling = on_path ^ 1
        side = sibling & 1
        same_side = (np.arange(nodes.shape[1])[None, :] & 1) == side[:, None]
        side_sum = sums[rows, depth - 1, side] ^ keys[:, depth - 1]
        others = np.bitwise_xor.reduce(nodes * same_side[:, :, None], axis=1)
        nodes[rows, sibling] = side_sum ^ others
    return nodes.reshape(-1, 16)


class SoftSpokenSender(CotSender):
    """Extension sender (holds delta) of SoftSpokenOT; same API as CotSender."""

    k: int
    _leaf_keys: U8

    @classmethod
    async def setup(
        cls, ctx: Context, peer: str, prg: Prg | None = None, name: str = "softspoken",
        k: int = DEFAULT_K,
    ) -> SoftSpokenSender:
        """Base OTs and GGM puncturing with ``peer`` (who runs SoftSpokenReceiver.setup)."""
        self = cls(ctx, peer, name, prg)
        self.k = _check_k(k)
        delta_bits = self.prg.bits(KAPPA)
        self.delta = np.packbits(delta_bits, bitorder="little")
        path = _delta_chunks(delta_bits, k)
        keys = await base_ot_receive(self.ctx, peer, _puncture_choices(path, k), self.prg.fork())
        sums = await self.ctx.recv(peer, "ggm")
        if not isinstance(sums, np.ndarray) or sums.nbytes != (KAPPA // k) * k * 32:
            raise OtProtocolError(peer, "SoftSpoken GGM level sums of wrong size")
        sums = sums.view(np.uint8).reshape(KAPPA // k, k, 2, 16)
        self._leaf_keys = _core.aes128_expand_many(_sender_trees(path, k, keys, sums))
        return self

    async def _extend(self, n: int, tag: str, reuse: bool = False, each: EachChunk = None) -> U8:
        streamed, total = each is not None, _pad128(n)
        q = self.rows_buffer(n, reuse, streamed)
        rows_per_ot = KAPPA // self.k
        for start in range(0, total, CHUNK_OTS):
            rows = chunk_rows(q, start, total, streamed)
            corr = await self.ctx.recv(self.peer, f"{tag}/{start}")
            if not isinstance(corr, np.ndarray) or corr.nbytes != rows_per_ot * rows.shape[0] // 8:
                raise OtProtocolError(self.peer, f"SoftSpoken corrections of wrong size in {tag}")
            await _in_thread(
                _core.softspoken_sender_into, self._leaf_keys, self.k, self.delta,
                self.block_counter, corr, rows,
            )
            self.block_counter += rows.shape[0] // 128
            if each is not None:
                await each(start, rows[: max(0, n - start)])
        return q[:0] if streamed else q[:n]


class SoftSpokenReceiver(CotReceiver):
    """Extension receiver (chooses r) of SoftSpokenOT; same API as CotReceiver."""

    k: int
    _leaf_keys: U8

    @classmethod
    async def setup(
        cls, ctx: Context, peer: str, prg: Prg | None = None, name: str = "softspoken",
        k: int = DEFAULT_K,
    ) -> SoftSpokenReceiver:
        """Base OTs and GGM trees with ``peer`` (who runs SoftSpokenSender.setup)."""
        self = cls(ctx, peer, name, prg)
        self.k = _check_k(k)
        keys0, keys1 = await base_ot_send(self.ctx, peer, KAPPA, self.prg.fork())
        leaves, sums = _receiver_trees(self.prg.blocks(KAPPA // k), k, keys0, keys1)
        await self.ctx.send(peer, "ggm", sums)
        self._leaf_keys = _core.aes128_expand_many(leaves)
        return self

    async def _extend_chunk(self, r: U8, rows: U8) -> U8:
        """SoftSpoken's correction: KAPPA / k rows of one bit per OT."""
        corr = np.empty((KAPPA // self.k, r.size), dtype=np.uint8)
        await _in_thread(
            _core.softspoken_receiver_into, self._leaf_keys, self.k, self.block_counter,
            r, corr, rows,
        )
        return corr
