"""The reference owner-matrix product equals numpy on the same values."""

import numpy as np
import pytest

from meshmpc.linalg import SecureBackend
from meshmpc.ml.product import SharedInputProduct, one_hot
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.factory import make_suite
from meshmpc.net.memory import run_parties

RNG = np.random.default_rng(1)
X = RNG.normal(size=(20, 3))
V = RNG.normal(size=3)
W = RNG.normal(size=20)
G = RNG.integers(0, 4, size=(20, 2))


async def _party(ctx):
    backend = SecureBackend(await make_suite(ctx, "semi2k", triples="dealer"))
    product = SharedInputProduct(backend)
    owner = ctx.party == "a"
    sv = await backend.input("b", V if ctx.party == "b" else None, shape=(3,))
    sw = await backend.input("b", W if ctx.party == "b" else None, shape=(20,))
    xv = await product.matvec("a", X if owner else None, sv, (20, 3))
    xtw = await product.rmatvec("a", X if owner else None, sw, (20, 3))
    sums = await product.grouped_sum("a", G if owner else None, sw, [4, 4])
    return await xv.reveal(), await xtw.reveal(), await sums.reveal()


def test_products_equal_numpy():
    xv, xtw, sums = run_parties(["a", "b"], _party)["b"]
    assert np.allclose(xv, X @ V, atol=1e-3)
    assert np.allclose(xtw, X.T @ W, atol=1e-3)
    expected = np.concatenate([np.bincount(G[:, j], weights=W, minlength=4) for j in range(2)])
    assert np.allclose(sums, expected, atol=1e-3)


def test_one_hot_rejects_out_of_range_group():
    with pytest.raises(MpcError, match="outside"):
        one_hot(np.array([[0], [5]]), [4])
