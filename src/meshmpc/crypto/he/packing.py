"""Fixed-point packing of (gradient, hessian) pairs, several per plaintext (SecureBoost+).

One sample's pair is one integer V = G 2^h_bits + H with G = round(g 2^f) (signed)
and H = round(h 2^f) >= 0, so a ciphertext sum over rows adds both at once. After
the histogram, the feature owner packs k bin sums into one ciphertext by Horner's
rule (slot j weighs 2^(slot_bits j)); the label holder decodes the slots as
balanced (signed) digits. The widths come from the largest sum that can occur:
``max_rows`` terms of at most ``g_bound``/``h_bound``; :class:`PackingOverflowError`
is raised when a value exceeds its bound or the slots do not fit the plaintext.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from meshmpc.crypto.he._limbs import U64, limbs_for, limbs_to_ints, sub_limbs
from meshmpc.crypto.he.errors import PackingOverflowError


def _bits_for(max_value: float) -> int:
    return max(1, math.ceil(math.log2(max_value + 1)))


@dataclass(frozen=True)
class GHPacking:
    """Slot layout for sums of up to ``max_rows`` fixed-point (g, h) pairs."""

    frac_bits: int
    g_bound: float
    h_bound: float
    max_rows: int
    plain_bits: int

    @property
    def h_bits(self) -> int:
        return _bits_for(self.max_rows * self.h_bound * 2.0**self.frac_bits)

    @property
    def g_bits(self) -> int:
        return _bits_for(self.max_rows * self.g_bound * 2.0**self.frac_bits) + 1

    @property
    def slot_bits(self) -> int:
        """Bits per packed (G, H) slot, with one bit of margin for the signed digits."""
        return self.h_bits + self.g_bits + 1

    @property
    def per_plaintext(self) -> int:
        """How many slots fit one plaintext (the whole packed value stays below half of it)."""
        k = (self.plain_bits - 2) // self.slot_bits
        if k < 1 or self.h_bits > 62 or self.h_bits + self.g_bits > 126:
            raise PackingOverflowError(
                f"he packing: a slot of {self.slot_bits} bits ({self.max_rows} rows, "
                f"{self.frac_bits} fraction bits) does not fit: use fewer fraction bits"
            )
        return k

    def encode(self, g: np.ndarray, h: np.ndarray, modulus: int) -> np.ndarray:
        """Per-sample plaintexts (count, limbs) of V = G 2^h_bits + H modulo ``modulus``."""
        self.per_plaintext  # noqa: B018 - raises when the layout cannot work
        scale = 2.0**self.frac_bits
        gi = np.rint(np.asarray(g, dtype=np.float64) * scale).astype(np.int64)
        hi = np.rint(np.asarray(h, dtype=np.float64) * scale).astype(np.int64)
        if np.any(np.abs(gi) > self.g_bound * scale + 0.5) or np.any(hi < 0) or np.any(
            hi > self.h_bound * scale + 0.5
        ):
            raise PackingOverflowError(
                f"he packing: a gradient exceeds |g| <= {self.g_bound} or a hessian "
                f"0 <= h <= {self.h_bound}"
            )
        sh = self.h_bits
        mag = np.abs(gi).astype(U64)
        hi_u = hi.astype(U64)
        lo = (mag << U64(sh)) if sh < 64 else np.zeros_like(mag)
        top = mag >> U64(64 - sh)
        neg = gi < 0
        # positive: (|G| << sh) + H (no carry: H < 2^sh); negative: (|G| << sh) - H.
        pos_lo = lo | hi_u
        neg_lo = lo - hi_u
        neg_top = top - (lo < hi_u).astype(U64)
        width = limbs_for(modulus.bit_length())
        out = np.zeros((gi.shape[0], width), dtype=U64)
        out[:, 0] = np.where(neg, neg_lo, pos_lo)
        if width > 1:
            out[:, 1] = np.where(neg, neg_top, top)
        if np.any(neg):
            from meshmpc.crypto.he._limbs import int_to_limbs

            m = int_to_limbs(modulus, width).reshape(1, -1)
            out[neg] = sub_limbs(m, out[neg])
        return out

    def decode(self, plain: np.ndarray, modulus: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Sums (G, H) of the first ``count`` slots of packed plaintexts (rows of limbs)."""
        k, s, sh = self.per_plaintext, self.slot_bits, self.h_bits
        half, full, hmask = modulus // 2, 1 << s, (1 << sh) - 1
        sign = 1 << (s - 1)
        vals: list[int] = []
        for x in limbs_to_ints(plain):
            if x > half:
                x -= modulus
            for _ in range(k):
                d = x & (full - 1)
                if d >= sign:
                    d -= full
                vals.append(d)
                x = (x - d) >> s
        v = vals[:count]
        hs = np.array([d & hmask for d in v], dtype=np.float64)
        gs = np.array([(d - (d & hmask)) >> sh for d in v], dtype=np.float64)
        scale = 2.0**-self.frac_bits
        return gs * scale, hs * scale
