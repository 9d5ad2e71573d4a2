"""ReLU and its derivative for the MLP, with a cheap bit x value product in two-party semi2k.

Generic path (rep3, semi2k with more parties): d = 1 - msb(h) as an arithmetic
share, a = d * h by one Beaver product (no truncation: d has scale 0).

Two-party semi2k: the comparison's XOR-shared bit d = d_0 xor d_1 is kept as
bits (no conversion to arithmetic) and every product d * v (a = d * h in the
forward pass, d * (delta W^T) in the backward pass) is the multiplexer of
CrypTFlow2 (Rathee et al., CCS 2020, section 4.2) on correlated OT: for each
element and each direction i -> j, party i inputs the correlation
(1 - 2 d_i) v_i, party j chooses with d_j and receives rho + d_j (1 - 2 d_i) v_i,
party i keeps d_i v_i - rho; the two shares sum to (d_i xor d_j) v_i. Cost per
element: two correlated OTs (one per direction), about 2 x (16 + 8) bytes,
one flight, instead of an arithmetic triple (64 Gilboa OTs per ordered pair,
about 1.5 kB) plus its opening. Security: semi-honest, either party
corrupted (the OT extension's model, protocols/ot.md); nothing is opened.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from meshmpc.linalg import SecretTensor
from meshmpc.mpc import circuits
from meshmpc.ot import OtPool


class SharedBits:
    """XOR shares of one bit per element (this party's 0/1 words) of a given shape."""

    def __init__(self, bits: np.ndarray, shape: tuple[int, ...], mux: BitMux) -> None:
        self.bits, self.shape, self.mux = bits, shape, mux

    async def times(self, v: SecretTensor) -> SecretTensor:
        """d * v for a shared v of the same shape (v's scale kept)."""
        return await self.mux.select(self, v)


class BitMux:
    """One party's multiplexer with its single peer (two-party semi2k)."""

    def __init__(self, ctx: Any, peer: str, leader: bool) -> None:
        self.ctx, self.peer, self.leader = ctx, peer, leader
        self.pool: OtPool | None = None

    async def setup(self) -> OtPool:
        if self.pool is None:
            self.pool = await OtPool.setup(self.ctx.scope("mlp-mux"), self.peer)
        return self.pool

    async def select(self, d: SharedBits, v: SecretTensor) -> SecretTensor:
        """Shares of d * v: both directions of the multiplexer at once."""
        pool = await self.setup()
        if tuple(v.shape) != d.shape:
            raise ValueError(f"bit mask of shape {d.shape} times a tensor of shape {v.shape}")
        mine = np.ascontiguousarray(v.share, dtype=np.uint64).reshape(-1)
        bits = d.bits
        correlation = np.where(bits.astype(bool), np.uint64(0) - mine, mine)  # (1 - 2 d_i) v_i
        rho, got = await asyncio.gather(
            pool.sender.send_correlated(correlation),
            pool.receiver.receive_correlated(bits.astype(np.uint8)))
        own = np.where(bits.astype(bool), mine, np.uint64(0))  # d_i v_i
        share = own - np.asarray(rho, np.uint64) + np.asarray(got, np.uint64)
        return SecretTensor(v.backend, share.reshape(v.share.shape), v.scale)


def mux_for(backend: Any) -> BitMux | None:
    """A multiplexer when the backend is two-party semi2k, else None (generic path)."""
    suite = backend.suite
    if suite.name != "semi2k" or len(suite.ctx.parties) != 2:
        return None
    return BitMux(suite.ctx, suite.ctx.peers[0], suite.ctx.index == 0)


async def relu_bits(h: SecretTensor, mux: BitMux) -> tuple[SecretTensor, SharedBits]:
    """(ReLU(h), [h >= 0] as XOR-shared bits): one comparison and one multiplexer."""
    suite = h.backend.suite
    n = int(np.prod(h.shape, dtype=np.int64))
    plane = await suite.msb_planes(np.ascontiguousarray(h.share).reshape(-1))
    msb = circuits.unslice_plane(plane, n)
    d = msb ^ np.uint64(1) if mux.leader else msb  # d = 1 - msb = NOT msb
    bits = SharedBits(d, tuple(h.shape), mux)
    return await bits.times(h), bits


async def times_mask(mask: SecretTensor | SharedBits, v: SecretTensor) -> SecretTensor:
    """mask * v for an arithmetic 0/1 tensor or XOR-shared bits."""
    if isinstance(mask, SharedBits):
        return await mask.times(v)
    return await (mask * v)
