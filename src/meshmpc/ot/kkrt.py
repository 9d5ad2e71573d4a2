"""KKRT 1-out-of-N OT with a pseudo-random code: the batched OPRF of KKRT PSI.

Paper: V. Kolesnikov, R. Kumaresan, M. Rosulek, N. Trieu, "Efficient Batched
Oblivious PRF with Applications to Private Set Intersection", CCS 2016.
Security: semi-honest, static corruption; the sender learns nothing about the
receiver's inputs; the receiver learns F(j, r_j) only (the code has minimum
distance far above 128 bits w.h.p., so each other point stays pseudo-random).

The code C maps a 128-bit input x to 512 bits: C(x) = AES_c0(x) || AES_c1(x) ||
AES_c2(x) || AES_c3(x), keys from a seed the sender picks at set-up. With k =
512 base OTs (receiver holds seed pairs, sender holds the seeds of its random
512-bit s), a batch of m inputs r_j costs one message receiver -> sender:
  u^i = G(k0_i) ^ G(k1_i) ^ C(r)^i         (512 x m bits = 64 bytes per input)
Then t_j = rows of G(k0_i), q_j = t_j ^ (C(r_j) & s), and
  F(j, x) = BLAKE2b-128(j || q_j ^ (C(x) & s))    (sender, any x)
  F(j, r_j) = BLAKE2b-128(j || t_j)               (receiver)
j is a global instance index, so values from different batches never collide.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.aes import Aes128
from meshmpc.crypto.bits import transpose
from meshmpc.crypto.hashing import item_hash
from meshmpc.crypto.prg import Prg
from meshmpc.net.context import Context
from meshmpc.ot.base import base_ot_receive, base_ot_send
from meshmpc.ot.errors import OtInputError, OtProtocolError
from meshmpc.ot.iknp import CotReceiver, CotSender, _in_thread, _pad128

CODE_BITS = 512
CODE_BYTES = CODE_BITS // 8
CHUNK_INPUTS = 1 << 15
"""Inputs per wire message (2 MiB of u)."""
_DOMAIN = b"meshmpc.kkrt.1"

U8 = npt.NDArray[np.uint8]


class _Code:
    """The pseudo-random code: four AES-128 permutations of the 128-bit input."""

    def __init__(self, seed: bytes) -> None:
        keys = Prg(seed).blocks(4)
        self._aes = [Aes128(k.tobytes()) for k in keys]

    def encode(self, x: U8) -> U8:
        """(n, 16) inputs to (n, 64) code words."""
        return np.hstack([aes.encrypt(x) for aes in self._aes])


def _oprf_hash(index0: int, rows: U8, indices: npt.NDArray[np.int64] | None = None) -> U8:
    """BLAKE2b-128 of (64-bit index || 64-byte row) for each row."""
    n = rows.shape[0]
    idx = np.arange(index0, index0 + n, dtype=np.int64) if indices is None else index0 + indices
    framed = np.empty((n, 8 + CODE_BYTES), dtype=np.uint8)
    framed[:, :8] = idx.astype("<u8").view(np.uint8).reshape(n, 8)
    framed[:, 8:] = rows
    return item_hash(framed, domain=_DOMAIN)


def _inputs(x: npt.ArrayLike) -> U8:
    arr = np.ascontiguousarray(x)
    if arr.ndim != 2 or arr.dtype != np.uint8 or arr.shape[1] != 16:
        raise OtInputError("KKRT inputs must be an (n, 16) uint8 array (use item_hash first)")
    return arr


class KkrtKey:
    """The sender's OPRF key for one batch: evaluates F(j, x) for any x."""

    def __init__(self, code: _Code, s: U8, q_rows: U8, index0: int) -> None:
        self._code = code
        self._s = s
        self._q = q_rows
        self.index0 = index0
        self.size = q_rows.shape[0]

    def evaluate(self, indices: npt.ArrayLike, x: npt.ArrayLike) -> U8:
        """F(indices[i], x[i]) for every i; indices are positions in this batch."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        pts = _inputs(x)
        if idx.size != pts.shape[0]:
            raise OtInputError(f"{idx.size} indices for {pts.shape[0]} inputs")
        if idx.size and (idx.min() < 0 or idx.max() >= self.size):
            raise OtInputError(f"KKRT index out of range 0..{self.size - 1}")
        rows = self._q[idx] ^ (self._code.encode(pts) & self._s)
        return _oprf_hash(self.index0, rows, idx)


class KkrtSender:
    """OPRF key holder (the PSI sender): learns nothing about the receiver's inputs."""

    def __init__(self, ctx: Context, peer: str, s_bits: U8, seeds: U8, prg: Prg) -> None:
        self.ctx, self.peer = ctx, peer
        self._s = np.packbits(s_bits, bitorder="little")
        self._round_keys = _core.aes128_expand_many(seeds)
        self._code_seed = prg.seed()
        self._code = _Code(self._code_seed)
        self._blocks = 0
        self._index = 0
        self._batch = 0

    @classmethod
    async def setup(
        cls, ctx: Context, peer: str, prg: Prg | None = None, name: str = "kkrt"
    ) -> KkrtSender:
        """Fresh set-up: 512 Chou-Orlandi base OTs (this side receives)."""
        prg = prg or Prg()
        scoped = ctx.scope(name)
        s_bits = prg.bits(CODE_BITS)
        seeds = await base_ot_receive(scoped, peer, s_bits, prg.fork())
        return await cls(scoped, peer, s_bits, seeds, prg)._send_code()

    @classmethod
    async def from_random_ots(cls, ot: CotReceiver, name: str) -> KkrtSender:
        """Set-up from 512 random OTs of an existing IKNP direction (no base OTs)."""
        s_bits, seeds = await ot.rot(CODE_BITS)
        return await cls(ot.ctx.scope(name), ot.peer, s_bits, seeds, ot.prg.fork())._send_code()

    async def _send_code(self) -> KkrtSender:
        await self.ctx.send(self.peer, "code", self._code_seed)
        return self

    async def extend(self, m: int) -> KkrtKey:
        """Answer the receiver's batch of m inputs; returns the key to evaluate F."""
        self._batch += 1
        q = np.empty((_pad128(m), CODE_BYTES), dtype=np.uint8)
        for start in range(0, q.shape[0], CHUNK_INPUTS):
            rows = q[start : start + CHUNK_INPUTS]
            u = await self.ctx.recv(self.peer, f"u/{self._batch}/{start}")
            if not isinstance(u, np.ndarray) or u.nbytes != rows.nbytes:
                raise OtProtocolError(self.peer, f"KKRT matrix of wrong size, batch {self._batch}")
            await _in_thread(
                _core.ext_sender_into, self._round_keys, self._s, self._blocks, u, rows
            )
            self._blocks += rows.shape[0] // 128
        key = KkrtKey(self._code, self._s, q[:m], self._index)
        self._index += m
        return key


class KkrtReceiver:
    """The party with inputs: learns F(j, r_j) for its own r_j only."""

    def __init__(self, ctx: Context, peer: str, k0: U8, k1: U8, code_seed: object) -> None:
        if not isinstance(code_seed, bytes) or len(code_seed) != 16:
            raise OtProtocolError(peer, "KKRT code seed must be 16 bytes")
        self.ctx, self.peer = ctx, peer
        self._k0 = _core.aes128_expand_many(k0)
        self._k1 = _core.aes128_expand_many(k1)
        self._code = _Code(code_seed)
        self._blocks = 0
        self._index = 0
        self._batch = 0

    @classmethod
    async def setup(
        cls, ctx: Context, peer: str, prg: Prg | None = None, name: str = "kkrt"
    ) -> KkrtReceiver:
        """Fresh set-up: 512 Chou-Orlandi base OTs (this side sends)."""
        scoped = ctx.scope(name)
        k0, k1 = await base_ot_send(scoped, peer, CODE_BITS, prg)
        return cls(scoped, peer, k0, k1, await scoped.recv(peer, "code"))

    @classmethod
    async def from_random_ots(cls, ot: CotSender, name: str) -> KkrtReceiver:
        """Set-up from 512 random OTs of an existing IKNP direction (no base OTs)."""
        k0, k1 = await ot.rot(CODE_BITS)
        scoped = ot.ctx.scope(name)
        return cls(scoped, ot.peer, k0, k1, await scoped.recv(ot.peer, "code"))

    async def encode(self, inputs: npt.ArrayLike) -> U8:
        """OPRF values F(j, inputs[j]) as (m, 16) uint8; the sender calls extend(m)."""
        x = _inputs(inputs)
        m = x.shape[0]
        self._batch += 1
        padded = np.zeros((_pad128(m), 16), dtype=np.uint8)
        padded[:m] = x
        t = np.empty((padded.shape[0], CODE_BYTES), dtype=np.uint8)
        for start in range(0, padded.shape[0], CHUNK_INPUTS):
            rows = t[start : start + CHUNK_INPUTS]
            n = rows.shape[0]
            columns = transpose(self._code.encode(padded[start : start + n]), n, CODE_BITS)
            u = np.empty((CODE_BITS, n // 8), dtype=np.uint8)
            await _in_thread(
                _core.ext_receiver_into, self._k0, self._k1, self._blocks, columns, False, u, rows
            )
            self._blocks += n // 128
            await self.ctx.send(self.peer, f"u/{self._batch}/{start}", u)
        out = _oprf_hash(self._index, t[:m])
        self._index += m
        return out
