"""Matrix triples and owner products by packed BFV (two-party semi2k, no dealer)."""

import numpy as np
import pytest

from meshmpc.ml.he_triples import HeMatrixTripleProvider
from meshmpc.ml.logistic import make_layout, split_roles
from meshmpc.ml.mlp import MLPConfig, reference_init, reference_train, standardise_stats
from meshmpc.ml.mlp_secure import train
from meshmpc.ml.product_he_matrix import (
    NOISE_ROOM,
    HeMatrixEngine,
    ProductSpec,
    cross_spec,
    signed_limbs,
    transposed,
)
from meshmpc.ml.vertical import VerticalSession
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.ring import RING64
from meshmpc.net.memory import run_parties

SEED = b"mlp-he-test-seed"


def _triples(shapes):
    """Run the HE provider for each (m, k, p), then the reuse of the first A transposed."""

    async def job(ctx):
        provider = HeMatrixTripleProvider(ctx)
        out = []
        for m, k, p in shapes:
            out.append(await provider.matrix_triples(RING64, (m, k), (k, p)))
        m, k, _ = shapes[0]
        out.append(await provider.matrix_triples(RING64, (k, m), (m, 3),
                                                 reuse=(out[0][3], True)))
        return out

    got = run_parties(["p0", "p1"], job)
    return [tuple(a + b for a, b in zip(x[:3], y[:3], strict=True))
            for x, y in zip(got["p0"], got["p1"], strict=True)], got


@pytest.mark.parametrize("shapes", [[(37, 5, 3), (1, 1, 1)], [(9, 70, 2), (200, 3, 40)]])
def test_he_matrix_triples_are_correct_and_reuse_a(shapes):
    totals, got = _triples(shapes)
    for a, b, c in totals:
        assert np.array_equal(np.matmul(a, b, dtype=np.uint64), c)
    # the reused triple's A is the first A transposed, its B fresh
    assert np.array_equal(totals[-1][0], totals[0][0].T)
    # shares are uniform words: each party's A share alone is not the A
    assert not np.array_equal(got["p0"][0][0], totals[0][0])
    assert got["p0"][0][0].dtype == np.uint64


def test_signed_limbs_recompose_mod_2_64():
    words = np.random.default_rng(1).integers(0, 2**64, size=1000, dtype=np.uint64)
    words[:4] = [0, 2**63, 2**64 - 1, 2**31]
    low, high = signed_limbs(words)
    assert np.all(np.abs(low) <= 2**31) and np.all(np.abs(high) <= 2**31)
    back = low.view(np.uint64) + (high.view(np.uint64) << np.uint64(32))
    assert np.array_equal(back, words)


@pytest.mark.parametrize("shape", [(1024, 64, 32), (64, 1024, 32), (64, 1024, 64), (32, 1024, 1)])
def test_layouts_of_the_mlp_products_fit_the_noise_budget(shape):
    m, k, p = shape
    spec = cross_spec(p, k, m) if transposed(m, k, p) else cross_spec(m, k, p)
    lay = spec.layout()
    assert lay.m_w * lay.k_w * lay.p_w <= 8192
    assert lay.flood_bits(31, 2, 2) <= NOISE_ROOM
    # one packed product covers many columns: far fewer products than outputs
    mb, kb, pb = lay.blocks
    assert mb * kb * pb * 8192 <= 4 * m * k * p + 8192 * kb


def test_huge_inner_dimension_is_refused_with_advice():
    with pytest.raises(MpcError, match="split the inner dimension"):
        transposed(4096, 1 << 22, 4096)


def test_key_holder_sees_uniform_words_whatever_the_plain_matrix():
    spec = ProductSpec(16, 8, 4, 1, (((0, 0),),), 28)

    async def job(ctx):
        engine = HeMatrixEngine(ctx, ctx.peers[0])
        await engine.setup()
        if ctx.party == "plain":
            zero = np.zeros((16, 8), dtype=np.int64)
            ones = np.ones((16, 8), dtype=np.int64) * (1 << 20)
            s0 = await engine.plain_side(ctx.scope("a"), spec, [zero])
            s1 = await engine.plain_side(ctx.scope("b"), spec, [ones])
            return s0, s1
        e = np.full((8, 4), 3, dtype=np.uint64)
        d0 = await engine.key_side(ctx.scope("a"), spec, [e])
        d1 = await engine.key_side(ctx.scope("b"), spec, [e])
        return d0, d1

    out = run_parties(["plain", "key"], job)
    t = np.uint64((1 << 59) - 1)
    for (share,), (seen,), want in [(out["plain"][0], out["key"][0], 0),
                                    (out["plain"][1], out["key"][1], 3 * 8 << 20)]:
        assert np.all((share + seen) & t == want)  # correct mod t ...
        top = (seen >> np.uint64(58)) & np.uint64(1)
        assert 10 < int(top.sum()) < 54  # ... while what the key holder decrypts is masked


def test_plain_side_rejects_malformed_inputs_naming_the_party():
    spec = ProductSpec(4, 4, 4, 1, (((0, 0),),), 28)

    async def job(ctx):
        engine = HeMatrixEngine(ctx, ctx.peers[0])
        await engine.setup()
        if ctx.party == "plain":
            with pytest.raises(MpcError, match="party key"):
                await engine.plain_side(ctx.scope("x"), spec, [np.ones((4, 4), np.int64)])
            return True
        await ctx.scope("x").send("plain", "in", [b"garbage"])
        return True

    assert all(run_parties(["plain", "key"], job).values())


def test_mlp_trains_with_he_triples_as_the_float_reference():
    """Two compute parties and an input provider: the provider's first layer is its
    plain-side product (ml/mlp_provider.py), every hidden product the direct HE product
    (ml/mlp_dense.py), the owners' first layer the packed owner product."""
    widths = {"bank": 3, "gov": 4, "fin": 2}
    config = MLPConfig(layers=(5, 3), epochs=1, batch_size=64, learning_rate=0.2,
                       init_seed=SEED)
    n = 160
    rng = np.random.default_rng(5)
    x = {p: rng.normal(size=(n, w)) for p, w in widths.items()}
    pooled = np.hstack(list(x.values()))
    y = (pooled[:, 0] * pooled[:, -1] + pooled[:, 1] > 0).astype(np.float64)
    roles = split_roles(n, 0.2, 0.0)

    async def job(ctx):
        session = await VerticalSession.open(ctx, "bank", "dishonest-majority", triples="he")
        result = await train(session, x[ctx.party], y if ctx.party == "bank" else None,
                             "bank", roles, config)
        return result, session.compute

    out = run_parties(list(widths), job)
    compute = out["bank"][1]
    assert compute == ["bank", "gov"]
    stats = [standardise_stats(x[p][roles == 0]) for p in widths]
    xs = np.hstack([(x[p] - m) / s for p, (m, s) in zip(widths, stats, strict=True)])
    ref = reference_train(xs, y, make_layout(roles, config.seed), config,
                          reference_init(config, xs.shape[1], len(compute)))
    z = out["bank"][0].scores_z
    zref = ref.forward(xs)
    assert np.max(np.abs(z - zref)) < 1e-2
    assert np.std(zref) > 0.1  # the network is not constant: the comparison means something


def test_softmax_output_trains_as_the_float_reference_three_classes():
    """A 3-class label, softmax output with cross-entropy on the engine's exp and reciprocal:
    the bank's logits (n x 3) and class probabilities match the float network's."""
    from meshmpc.ml.mlp import one_hot, softmax

    widths = {"bank": 3, "gov": 4, "fin": 2}
    config = MLPConfig(layers=(6,), epochs=2, batch_size=64, learning_rate=0.1,
                       output="softmax", classes=3, init_seed=SEED)
    n = 240
    rng = np.random.default_rng(9)
    x = {p: rng.normal(size=(n, w)) for p, w in widths.items()}
    pooled = np.hstack(list(x.values()))
    y = np.digitize(pooled[:, 0] + pooled[:, 4] * pooled[:, 5], [-0.5, 0.5]).astype(float)
    roles = split_roles(n, 0.2, 0.0)

    async def job(ctx):
        session = await VerticalSession.open(ctx, "bank", "honest-majority")
        result = await train(session, x[ctx.party], y if ctx.party == "bank" else None,
                             "bank", roles, config)
        return result, session.compute

    out = run_parties(list(widths), job)
    stats = [standardise_stats(x[p][roles == 0]) for p in widths]
    xs = np.hstack([(x[p] - m) / s for p, (m, s) in zip(widths, stats, strict=True)])
    ref = reference_train(xs, y, make_layout(roles, config.seed), config,
                          reference_init(config, xs.shape[1], len(out["bank"][1])))
    z, zref = out["bank"][0].scores_z, ref.forward(xs)
    assert z.shape == zref.shape == (n, 3)
    assert np.max(np.abs(z - zref)) < 2e-2
    assert np.max(np.abs(softmax(z) - softmax(zref))) < 5e-3
    # trained: better than chance at predicting the class, and far from the start
    start = reference_init(config, xs.shape[1], 3)
    assert np.max(np.abs(ref.weights[-1] - start[-1])) > 0.05
    assert np.mean(np.argmax(zref, axis=1) == y) > 0.45
    assert one_hot(y, 3).sum() == n


def test_softmax_labels_out_of_range_are_refused_naming_the_row():
    from meshmpc.ml.mlp import check_labels
    from meshmpc.ml.vertical import VerticalError

    config = MLPConfig(output="softmax", classes=3)
    with pytest.raises(VerticalError, match="row 2"):
        check_labels(np.array([0, 2, 3, 1.0]), config, "bank")
    with pytest.raises(VerticalError, match="classes"):
        MLPConfig(output="softmax", classes=1)


def test_two_party_relu_multiplexer_is_exact_and_masks_the_backward_product():
    """Two-party semi2k: ReLU from the comparison's XOR bits and the multiplexer (no
    arithmetic triple); d * v in the backward pass by the same bits."""
    from meshmpc.linalg import SecureBackend
    from meshmpc.ml.mlp_relu import SharedBits, mux_for, relu_bits
    from meshmpc.mpc.factory import make_suite

    h = np.array([[-1000.5, -37, -2], [-1, 0, 1], [2, 5, 30000.25]])
    v = np.array([[1.5, -2, 3], [4, -5, 6], [-7, 8, 9.75]])

    async def job(ctx):
        backend = SecureBackend(await make_suite(ctx, "semi2k", triples="ot"))
        mux = mux_for(backend)
        assert mux is not None
        x = await backend.input("a", h if ctx.party == "a" else None, shape=h.shape)
        w = await backend.input("a", v if ctx.party == "a" else None, shape=v.shape)
        a, d = await relu_bits(x, mux)
        assert isinstance(d, SharedBits)
        masked = await d.times(w)
        return await a.reveal(), await masked.reveal(), d.bits

    out = run_parties(["a", "b"], job)
    relu, masked, bits = out["a"]
    assert np.array_equal(relu, np.maximum(h, 0.0))
    assert np.array_equal(masked, np.where(h >= 0, v, 0.0))
    # the derivative is held as XOR shares of bits, never opened
    assert np.array_equal(bits ^ out["b"][2], (h >= 0).astype(np.uint64).ravel())


def test_softmax_operator_error_against_float():
    """The engine's softmax on rep3 shares, 2,000 x 3 logits uniform on [-8, 8]: measured
    max |p - p_float| 1.7e-3, mean 1.0e-4 (protocols/mlp.md)."""
    from meshmpc.linalg import SecureBackend
    from meshmpc.ml.mlp import softmax
    from meshmpc.mpc.factory import make_suite

    z = np.random.default_rng(4).uniform(-8, 8, size=(2000, 3))

    async def job(ctx):
        backend = SecureBackend(await make_suite(ctx, "rep3", triples="none"))
        x = await backend.input("a", z if ctx.party == "a" else None, shape=z.shape)
        return await (await x.softmax(axis=1)).reveal()

    p = run_parties(["a", "b", "c"], job)["a"]
    err = np.abs(p - softmax(z))
    assert err.max() < 5e-3 and err.mean() < 5e-4
    assert np.allclose(p.sum(axis=1), 1.0, atol=5e-3)


@pytest.mark.parametrize("owner", ["a", "b"])
def test_packed_owner_product_all_columns_both_ways(owner):
    """Two parties: X W (forward) and X^T D (backward) for a shared many-column W / D in one
    packed product each, whichever party owns X."""
    from meshmpc.linalg import SecureBackend
    from meshmpc.ml.product import make_product
    from meshmpc.mpc.factory import make_suite

    rng = np.random.default_rng(2)
    x, w, d = rng.normal(size=(70, 9)), rng.normal(size=(9, 5)), rng.normal(size=(70, 4))

    async def job(ctx):
        backend = SecureBackend(await make_suite(ctx, "semi2k", triples="dealer"))
        product = make_product(backend, "dishonest-majority")
        other = "b" if owner == "a" else "a"
        sw = await backend.input(other, w if ctx.party == other else None, shape=w.shape)
        sd = await backend.input(other, d if ctx.party == other else None, shape=d.shape)
        mine = x if ctx.party == owner else None
        xw = await product.matvec(owner, mine, sw, x.shape)
        xtd = await product.rmatvec(owner, mine, sd, x.shape)
        return await xw.reveal(), await xtd.reveal()

    xw, xtd = run_parties(["a", "b"], job)["a"]
    assert np.allclose(xw, x @ w, atol=3e-3)
    assert np.allclose(xtd, x.T @ d, atol=2e-2)
