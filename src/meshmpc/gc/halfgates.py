"""Half-gates garbling of the sign-bit circuit, vectorised over many instances.

Paper: S. Zahur, M. Rosulek, D. Evans, "Two Halves Make a Whole: Reducing
Data Transfer in Garbled Circuits using Half Gates", EUROCRYPT 2015; free-XOR
(Kolesnikov-Schneider 2008); fixed-key AES hashing (Bellare-Hoang-Keelveedhi-
Rogaway 2013) through the tweakable correlation-robust hash of Guo-Katz-Wang-Yu
(S&P 2020). Garbling and evaluation of each AND layer are one C call
(``meshmpc._core.gc_garble_and`` / ``gc_eval_and``).

The circuit computes msb(a + b) of two 64-bit words with a ripple-carry chain:
c_1 = a_0 b_0, c_{i+1} = ((a_i ^ c_i) (b_i ^ c_i)) ^ c_i, msb = a_63 ^ b_63 ^ c_63:
63 AND gates, 32 bytes of table each. Gate layer i of all n instances is one
batch, so an instance costs 63 layers x (2 hashes garbling + 1 evaluating) per
half-gate.
"""

from __future__ import annotations

import secrets

import numpy as np

from meshmpc import _core
from meshmpc.crypto.aes import FIXED_KEY_AES

BITS = 64
AND_GATES = BITS - 1
Labels = np.ndarray  # (..., 16) uint8


def colour_bit(delta: np.ndarray) -> int:
    """A uniformly random bit position set in delta: the point-and-permute bit.

    The evaluator is told this position, so it learns that one bit of delta
    is 1 (as lsb(delta) = 1 tells it in the usual presentation). Taking the
    *lowest* set bit would also tell it that every bit below is 0 (an extra
    i bits, i geometric); a random set bit does not. Draw it once per delta.
    """
    bits = np.flatnonzero(np.unpackbits(np.asarray(delta, dtype=np.uint8), bitorder="little"))
    if not bits.size:
        raise ValueError("free-XOR offset delta must not be zero")
    return int(bits[secrets.randbelow(bits.size)])


def colours(labels: Labels, colour: int) -> np.ndarray:
    """Point-and-permute bits (uint8 0/1) of (n, 16) labels."""
    flat = np.ascontiguousarray(labels).reshape(-1, 16)
    out = np.empty(flat.shape[0], dtype=np.uint8)
    _core.gc_colors(flat, colour, out)
    return out


class SignGarbler:
    """Garbles msb(a + b) for n instances given zero-labels of a and b (n, 64, 16)."""

    def __init__(self, delta: np.ndarray, tweak: int, colour: int | None = None) -> None:
        self.delta = np.ascontiguousarray(delta, dtype=np.uint8).reshape(16)
        self.colour = colour_bit(self.delta) if colour is None else colour
        self.tweak = tweak

    def garble(self, a0: Labels, b0: Labels) -> tuple[np.ndarray, Labels]:
        """(tables (63, n, 32), zero-label of the msb output (n, 16))."""
        n = a0.shape[0]
        tables = np.empty((AND_GATES, n, 32), dtype=np.uint8)
        carry = np.empty((n, 16), dtype=np.uint8)
        rk = FIXED_KEY_AES.round_keys
        _core.gc_garble_and(rk, self._next(n), np.ascontiguousarray(a0[:, 0]),
                            np.ascontiguousarray(b0[:, 0]), self.delta, self.colour,
                            carry, tables[0])
        for i in range(1, AND_GATES):
            left = a0[:, i] ^ carry
            right = b0[:, i] ^ carry
            out = np.empty_like(carry)
            _core.gc_garble_and(rk, self._next(n), left, right, self.delta, self.colour,
                                out, tables[i])
            carry = out ^ carry
        return tables, a0[:, BITS - 1] ^ b0[:, BITS - 1] ^ carry

    def _next(self, n: int) -> int:
        tweak = self.tweak
        self.tweak += 2 * n
        return tweak


class SignEvaluator:
    """Evaluates the garbled msb circuit on active labels of a and b."""

    def __init__(self, colour: int, tweak: int) -> None:
        self.colour = colour
        self.tweak = tweak

    def evaluate(self, tables: np.ndarray, a: Labels, b: Labels) -> Labels:
        n = a.shape[0]
        rk = FIXED_KEY_AES.round_keys
        carry = np.empty((n, 16), dtype=np.uint8)
        _core.gc_eval_and(rk, self._next(n), np.ascontiguousarray(a[:, 0]),
                          np.ascontiguousarray(b[:, 0]), self.colour,
                          np.ascontiguousarray(tables[0]), carry)
        for i in range(1, AND_GATES):
            out = np.empty_like(carry)
            _core.gc_eval_and(rk, self._next(n), a[:, i] ^ carry, b[:, i] ^ carry,
                              self.colour, np.ascontiguousarray(tables[i]), out)
            carry = out ^ carry
        return a[:, BITS - 1] ^ b[:, BITS - 1] ^ carry

    def _next(self, n: int) -> int:
        tweak = self.tweak
        self.tweak += 2 * n
        return tweak
