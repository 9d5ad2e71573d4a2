"""Fixed-point encoding over the share rings, and its precision budget.

A real x is stored as round(x * 2^f) in two's complement. Every tensor carries
its own scale (fraction bits): 0 for bits and integers, ``frac_bits`` for
reals. A product of scales a and b has scale a + b and is truncated back to
``frac_bits`` only when a + b exceeds it, so multiplying by a comparison bit
costs no truncation.

Defaults: Z_2^64 uses f = 16 (values up to about 2^31 before a product
overflows 2^63 at scale 2f; the probabilistic truncation of 2-party semi2k and
rep3 fails with probability about 2^(l_x + 1 - 64), where l_x is the bit
length of the product at scale 2f). Z_2^128 uses f = 40: at least 32
significant bits for values from 2^-8 to 2^40.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.ring import Ring, ring_for

DEFAULT_FRAC_BITS = {64: 16, 128: 40}


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point parameters: ring size, fraction bits, truncation mode."""

    ring_bits: int = 64
    frac_bits: int | None = None
    exact_trunc: bool = False

    @property
    def ring(self) -> Ring:
        return ring_for(self.ring_bits)

    @property
    def f(self) -> int:
        """The fraction bits in force (the ring's default when not given)."""
        f = DEFAULT_FRAC_BITS[self.ring_bits] if self.frac_bits is None else self.frac_bits
        if not 0 < f < self.ring_bits // 2 - 1:
            raise MpcError(f"frac_bits={f} does not fit Z_2^{self.ring_bits}; "
                           f"use 0 < frac_bits < {self.ring_bits // 2 - 1}")
        return f
