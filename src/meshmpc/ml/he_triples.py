"""semi2k correlations with matrix triples from lattice HE (two parties, no dealer).

Everything but matrix triples comes from :class:`~meshmpc.mpc.ot_triples.OtTripleProvider`
(IKNP OT extension). A matrix triple C = A @ B has the local terms A_i B_i and
the cross terms A_0 B_1 and A_1 B_0; each cross term is one packed BFV product
(:func:`meshmpc.ml.product_he_matrix.cross_term`): one party encrypts its share
of one factor, the other multiplies by its plaintext share, masks and floods.
Both cross terms run at once (each party is plain side for one, key holder for
the other). Cost per triple: 6 uploaded and 4 returned ciphertext sets and
6 m k p / N ciphertext-plaintext products (N = 8192), instead of 64 m k p / 2
correlated OTs per ordered pair. Security: semi-honest, dishonest majority
(either party may be corrupted), as the OT provider; what each party sees is
RLWE ciphertexts or values masked uniformly mod t (protocols/mlp.md).
With more than two parties the OT provider's matrix triples are used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.ml.product_he_matrix import HeMatrixEngine, cross_term
from meshmpc.mpc.ot_triples import OtTripleProvider
from meshmpc.mpc.ring import RING64, Ring
from meshmpc.mpc.semi2k import Semi2k
from meshmpc.net import Context
from meshmpc.ot import OtPool


class HeMatrixTripleProvider(OtTripleProvider):
    """OT-made correlations, matrix triples by packed BFV products (two parties)."""

    name = "ot+he"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.engine: HeMatrixEngine | None = None
        self.lift_pool: OtPool | None = None
        self._products = 0

    async def setup(self) -> None:
        await super().setup()
        if len(self.ctx.parties) != 2 or self.engine is not None:
            return
        peer = self.ctx.peers[0]
        engine = HeMatrixEngine(self.ctx.scope("he-triples"), peer)
        await engine.setup()
        self.lift_pool = await OtPool.setup(self.ctx.scope("he-triples-ot"), peer)
        self.engine = engine

    async def matrix_triples(self, ring: Ring, sx: Sequence[int], sy: Sequence[int],
                             reuse: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """C = A @ B: local A_i B_i plus the two cross terms by HE (A reused if asked)."""
        await self.setup()
        if self.engine is None or ring.bits != 64:
            parent = OtTripleProvider.matrix_triples.__wrapped__  # type: ignore[attr-defined]
            result: tuple[np.ndarray, np.ndarray, np.ndarray, Any] = await parent(
                self, ring, sx, sy, reuse)
            return result
        assert self.lift_pool is not None
        (m, k), (_, p) = sx, sy
        a, b = self._matrix_factors(sx, sy, reuse)
        self._products += 1
        me, peer = self.ctx.party, self.ctx.peers[0]
        shape = (m, k, p)
        left, right = await asyncio.gather(
            cross_term(self.engine, self.lift_pool, True, a, shape, f"{self._products}/{me}"),
            cross_term(self.engine, self.lift_pool, False, b, shape,
                       f"{self._products}/{peer}"))
        c = np.matmul(a, b, dtype=np.uint64) + left + right
        return a, b, c, (a if reuse is None else reuse[0])


async def make_he_suite(ctx: Context, comparison: str | None = None) -> Semi2k:
    """semi2k over Z_2^64 with :class:`HeMatrixTripleProvider` (set up), the millionaires'
    comparison for two parties."""
    provider = HeMatrixTripleProvider(ctx)
    await provider.setup()
    if comparison is None:
        comparison = "millionaire" if len(ctx.parties) == 2 else "circuit"
    return Semi2k(ctx, RING64, provider, comparison)
