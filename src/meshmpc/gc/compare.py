"""Two-party garbled-circuit sign bit of an additively shared Z_2^64 value.

Security: semi-honest, two parties (the garbler is the first party of the
pool's direction, the evaluator the other). What is revealed: nothing; each
party ends with an XOR share of msb(x_0 + x_1), namely the colour bit of the
output's zero-label (garbler) or of its active label (evaluator).

Flow per batch of n values (one direction of an OtPool, whose correlated-OT
delta is the free-XOR offset):
1. evaluator -> garbler: IKNP COT on the 64 bits of x_1 (16 bytes per bit);
   the garbler's outputs q are the zero-labels of the evaluator's wires and the
   evaluator's t = q ^ b delta are its active labels;
2. garbler -> evaluator: the active labels of x_0's bits (16 bytes per bit) and
   the 63 half-gate tables (32 bytes per gate).
Costs per comparison: 64 COTs + 64 x 16 + 63 x 32 = 3.1 KB from the garbler,
1 KB from the evaluator; 2 rounds. The bit-sliced GMW circuit of
meshmpc.mpc.circuits needs about 47 bytes, so it is the default.
"""

from __future__ import annotations

import numpy as np

from meshmpc.crypto.prg import Prg
from meshmpc.gc.halfgates import BITS, SignEvaluator, SignGarbler, colour_bit, colours
from meshmpc.net import Context
from meshmpc.ot import OtPool

CHUNK = 1 << 15  # instances per message (about 100 MB of tables)
_SHIFTS = np.arange(BITS, dtype=np.uint64)


def _bits(words: np.ndarray) -> np.ndarray:
    return ((words[:, None] >> _SHIFTS) & np.uint64(1)).astype(np.uint8)


class GcSign:
    """One party's end of the garbled sign-bit protocol with ``pool.peer``."""

    def __init__(self, ctx: Context, pool: OtPool, garbler: bool) -> None:
        self.ctx = ctx.scope("gc-sign")
        self.pool = pool
        self.garbler = garbler
        self._prg = Prg()  # seeded from os.urandom
        self._batch = 0
        self._tweak = 0
        self._colour: int | None = None  # drawn once: each new draw would reveal another bit

    async def msb_shares(self, words: np.ndarray) -> np.ndarray:
        """XOR share (uint8 0/1 per element) of the sign of my share + the peer's."""
        words = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
        out = np.empty(words.size, dtype=np.uint8)
        for start in range(0, words.size, CHUNK):
            part = words[start: start + CHUNK]
            self._batch += 1
            if self.garbler:
                out[start: start + part.size] = await self._garble(part)
            else:
                out[start: start + part.size] = await self._evaluate(part)
        return out

    async def _garble(self, x0: np.ndarray) -> np.ndarray:
        n = x0.size
        sender = self.pool.sender
        delta = np.asarray(sender.delta, dtype=np.uint8)
        b0 = (await sender.cot(n * BITS)).reshape(n, BITS, 16)
        a0 = self._prg.blocks(n * BITS).reshape(n, BITS, 16)
        if self._colour is None:
            self._colour = colour_bit(delta)
        garbler = SignGarbler(delta, self._tweak, self._colour)
        tables, out0 = garbler.garble(a0, b0)
        self._tweak = garbler.tweak
        active = a0 ^ (_bits(x0)[:, :, None] * delta)
        await self.ctx.send(self.pool.peer, f"g/{self._batch}", np.concatenate(
            [active.reshape(-1), tables.reshape(-1)]))
        # the point-and-permute position (the same every batch): reveals that one bit
        # of delta is 1, as lsb(delta) = 1 does in the usual presentation
        await self.ctx.send(self.pool.peer, f"c/{self._batch}", garbler.colour)
        return colours(out0, garbler.colour)

    async def _evaluate(self, x1: np.ndarray) -> np.ndarray:
        n = x1.size
        receiver = self.pool.receiver
        b = (await receiver.cot(_bits(x1).reshape(-1))).reshape(n, BITS, 16)
        blob = await self.ctx.recv(self.pool.peer, f"g/{self._batch}")
        a = blob[: n * BITS * 16].reshape(n, BITS, 16)
        tables = blob[n * BITS * 16:].reshape(BITS - 1, n, 32)
        colour = int(await self.ctx.recv(self.pool.peer, f"c/{self._batch}"))
        evaluator = SignEvaluator(colour, self._tweak)
        out = evaluator.evaluate(tables, a, b)
        self._tweak = evaluator.tweak
        return colours(out, colour)
