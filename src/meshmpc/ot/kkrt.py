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
from meshmpc.crypto.bits import transpose
from meshmpc.crypto.hashing import blake2b_address
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
        self.seed = seed
        self.round_keys = _core.aes128_expand_many(Prg(seed).blocks(4))

    def encode(self, x: U8) -> U8:
        """(n, 16) inputs to (n, 64) code words."""
        out = np.empty((4, x.shape[0], 16), dtype=np.uint8)
        for k in range(4):
            _core.aes128_ecb_into(self.round_keys[k], x, out[k])
        return np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(-1, CODE_BYTES)


def _oprf(
    index0: int,
    rows: U8,
    code: _Code | None = None,
    s: U8 | None = None,
    indices: npt.NDArray[np.int64] | None = None,
    x: U8 | None = None,
) -> U8:
    """BLAKE2b-128(LE64(index0 + j) || row_j ^ (C(x) & s)) per output, in one C call.

    Without ``x`` the rows are hashed as they are (the receiver's values).
    """
    n = rows.shape[0] if indices is None else indices.shape[0]
    out = np.empty((n, 16), dtype=np.uint8)
    keys = code.round_keys if code is not None else _NO_CODE
    mask = s if s is not None else _NO_MASK
    _core.kkrt_oprf_into(
        blake2b_address(), _PERSONAL, keys, mask, rows, indices, index0, x, out
    )
    return out


_PERSONAL = _DOMAIN.ljust(16, b"\0")
_NO_CODE = np.zeros((4, 176), dtype=np.uint8)
_NO_MASK = np.zeros(CODE_BYTES, dtype=np.uint8)


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
        return _oprf(self.index0, self._q, self._code, self._s, idx, pts)


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
        out = _oprf(self._index, t[:m])
        self._index += m
        return out
