"""The input provider as the plain side of the packed BFV product (ml/mlp_provider.py)."""

import numpy as np
import pytest

from meshmpc.ml.logistic import make_layout, split_roles
from meshmpc.ml.mlp import MLPConfig, reference_init, reference_train, standardise_stats
from meshmpc.ml.mlp_provider import ProviderProducts, serve
from meshmpc.ml.mlp_secure import train
from meshmpc.ml.vertical import VerticalError, VerticalSession
from meshmpc.net.memory import run_parties

SEED = b"mlp-provider-seed"
F = 16


def _encoded(a):
    return np.rint(a * 2.0 ** F).astype(np.int64).view(np.uint64)


def _run(x, body):
    """c0, c1 compute (semi2k; the test-only dealer keeps set-up short, the product
    itself uses no triple), p provides ``x``; ``body(client, backend, party)`` runs at
    the compute parties, then the provider is told it is done."""

    async def job(ctx):
        session = await VerticalSession.open(ctx, "c0", "dishonest-majority",
                                             triples="dealer", compute=["c0", "c1"])
        if ctx.party == "p":
            return await serve(session, x, F)
        client = ProviderProducts(session, ["p"])
        await client.setup()
        out = await body(client, session.require_backend(), ctx.party)
        await client.close()
        return out

    return run_parties(["c0", "c1", "p"], job)


@pytest.mark.parametrize("n,d,p,rows", [(37, 5, 3, slice(0, 37)),
                                        (300, 70, 9, slice(100, 290))])
def test_provider_product_equals_the_plaintext_product_mod_2_64(n, d, p, rows):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d))
    x[rows.start + 1] = 0.0  # a zero row
    if n == 37:
        x[:, :] = 0.0
        x[3, 2] = 1.5  # almost every plaintext block is all zero
    m = rows.stop - rows.start
    w = rng.normal(size=(d, p))
    delta = rng.normal(size=(m, p))

    async def body(client, backend, me):
        sw = await backend.input("c0", w if me == "c0" else None, shape=w.shape)
        sd = await backend.input("c1", delta if me == "c1" else None, shape=delta.shape)
        fwd = await client.request("p", sw, rows, d, False)
        bwd = await client.request("p", sd, rows, d, True)
        raw = await client.lifted([fwd, bwd], summed=False)
        again = [await client.request("p", sw, rows, d, False) for _ in range(2)]
        (total,) = await client.collect(again, summed=True)
        return raw, await total.reveal()

    out = _run(x, body)
    xb = _encoded(x[rows])
    want_f = np.matmul(xb, _encoded(w), dtype=np.uint64)
    want_b = np.matmul(xb.T.copy(), _encoded(delta), dtype=np.uint64)
    got_f = out["c0"][0][0] + out["c1"][0][0]
    got_b = out["c0"][0][1] + out["c1"][0][1]
    assert got_f.shape == (m, p) and got_b.shape == (d, p)
    assert np.array_equal(got_f, want_f)
    assert np.array_equal(got_b, want_b)
    # summed and truncated to scale f: twice the real product within fixed-point error
    assert np.max(np.abs(out["c0"][1] - 2 * x[rows] @ w)) < 1e-3
    assert out["p"] == 4  # the provider answered every request, then stopped


def test_what_a_compute_party_decrypts_is_uniform_and_fresh_per_call():
    x = np.zeros((64, 4))  # the provider's matrix is zero: only the masks are left
    x[0, 0] = 1.0
    w = np.full((4, 8), 0.5)

    async def body(client, backend, me):
        sw = await backend.input("c0", w if me == "c0" else None, shape=w.shape)
        seen = []
        for _ in range(2):
            pending = await client.request("p", sw, slice(0, 64), 4, False)
            seen.append(await client._decrypt(pending))
        return seen

    out = _run(x, body)
    mask = np.uint64((1 << 59) - 1)
    for me in ("c0", "c1"):
        first, second = out[me]
        # rows 1.. of X are zero, so there c_i decrypts its mask alone: fresh every call
        assert np.count_nonzero(first[1:] == second[1:]) == 0
        for seen in (first, second):
            top = (seen >> np.uint64(58)) & np.uint64(1)  # 512 words, half with the bit
            assert 180 < int(top.sum()) < 332
            assert len(np.unique(seen)) == seen.size  # no structure from the zero rows
    # the two decryptions are a sharing of X W mod t (the provider's mask sum is zero)
    total = (out["c0"][0] + out["c1"][0]) & mask
    assert np.array_equal(total, np.matmul(_encoded(x), _encoded(w), dtype=np.uint64) & mask)


def test_provider_refuses_requests_that_disagree_naming_the_parties():
    x = np.ones((10, 2))

    async def job(ctx):
        session = await VerticalSession.open(ctx, "c0", "dishonest-majority",
                                             triples="dealer", compute=["c0", "c1"])
        if ctx.party == "p":
            with pytest.raises(VerticalError, match="parties c0 and c1 .* provider p"):
                await serve(session, x, F)
            return True
        scope = session.ctx.scope("mlp-provider")
        await scope.send("p", "pk", ProviderProducts(session, ["p"]).bfv.keygen()[1])
        lo = 0 if ctx.party == "c0" else 5
        await scope.send("p", "head/1", {"op": "fwd", "lo": lo, "hi": 10, "cols": 1})
        return True

    assert all(run_parties(["c0", "c1", "p"], job).values())


def test_mlp_four_parties_two_providers_trains_as_the_float_reference():
    """bank and gov compute (semi2k, HE triples), fin and telco provide through their own
    plain-side products: the logits equal the float network's from the same weights."""
    widths = {"bank": 3, "gov": 4, "fin": 2, "telco": 3}
    config = MLPConfig(layers=(5, 3), epochs=1, batch_size=64, learning_rate=0.2,
                       init_seed=SEED)
    n = 150
    rng = np.random.default_rng(9)
    x = {p: rng.normal(size=(n, w)) for p, w in widths.items()}
    pooled = np.hstack(list(x.values()))
    y = (pooled[:, 0] * pooled[:, -1] + pooled[:, 8] > 0).astype(np.float64)
    roles = split_roles(n, 0.2, 0.0)

    async def job(ctx):
        session = await VerticalSession.open(ctx, "bank", "dishonest-majority", triples="he")
        result = await train(session, x[ctx.party], y if ctx.party == "bank" else None,
                             "bank", roles, config)
        return result, session.compute, sorted(session._shared)

    out = run_parties(list(widths), job)
    assert out["bank"][1] == ["bank", "gov"]
    assert out["bank"][2] == [] and out["gov"][2] == []  # no provider matrix was shared
    stats = [standardise_stats(x[p][roles == 0]) for p in widths]
    xs = np.hstack([(x[p] - m) / s for p, (m, s) in zip(widths, stats, strict=True)])
    ref = reference_train(xs, y, make_layout(roles, config.seed), config,
                          reference_init(config, xs.shape[1], 2))
    zref = ref.forward(xs)
    assert np.max(np.abs(out["bank"][0].scores_z - zref)) < 1e-2
    assert np.std(zref) > 0.1


def test_three_limb_split_recomposes_mod_2_64_within_the_bound():
    from meshmpc.ml.mlp_dense import recombine, signed_limbs3

    words = np.random.default_rng(3).integers(0, 2**64, size=2000, dtype=np.uint64)
    words[:5] = [0, 2**63, 2**64 - 1, 2**21, 2**43]
    limbs = signed_limbs3(words)
    assert all(np.all(np.abs(limb) <= 2**21) for limb in limbs)
    assert np.array_equal(recombine([limb.view(np.uint64) for limb in limbs]), words)


def test_direct_dense_product_equals_the_float_product():
    """Shared x shared without triples: X_0 V and X_1 V by the plain-side product, for
    shapes off the block sizes (one suite for all: its set-up is the slow part)."""
    from meshmpc.linalg import SecureBackend
    from meshmpc.ml.he_triples import make_he_suite
    from meshmpc.ml.mlp_dense import dense_for

    rng = np.random.default_rng(4)
    cases = [(rng.normal(scale=3.0, size=(m, k)), rng.normal(scale=0.5, size=(k, p)))
             for m, k, p in [(37, 70, 5), (1, 1, 1), (200, 3, 40)]]
    cases[0][0][0] = 0.0  # a zero row

    async def job(ctx):
        backend = SecureBackend(await make_he_suite(ctx))
        dense = dense_for(backend)
        assert dense is not None
        out = []
        for x, v in cases:
            sx = await backend.input("p0", x if ctx.party == "p0" else None, shape=x.shape)
            sv = await backend.input("p1", v if ctx.party == "p1" else None, shape=v.shape)
            z = await dense.matmul(sx, sv)
            out.append((await z.reveal(), z.share))
        return out

    got = run_parties(["p0", "p1"], job)
    for (x, v), (opened, mine), (_, theirs) in zip(cases, got["p0"], got["p1"], strict=True):
        assert np.max(np.abs(opened - x @ v)) < 1e-3
        assert not np.array_equal(mine, theirs)  # shares, not the value twice
