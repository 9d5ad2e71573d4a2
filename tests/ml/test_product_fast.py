"""The HE (dishonest-majority) and rep3 (honest-majority) products equal numpy and the
reference, and what the HE key holder decrypts is masked."""

import numpy as np
import pytest

from meshmpc.linalg import SecureBackend
from meshmpc.ml import product_he
from meshmpc.ml.product import make_product
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.factory import make_suite
from meshmpc.net.memory import run_parties

RNG = np.random.default_rng(5)
N, D = 300, 7
X = RNG.normal(size=(N, D))
V = RNG.normal(size=D)
W = RNG.normal(size=N)
G = RNG.integers(0, 5, size=(N, 3))
COUNTS = [5, 5, 5]


def _expected_sums(weights: np.ndarray) -> np.ndarray:
    return np.concatenate([np.bincount(G[:, j], weights=weights, minlength=5)
                           for j in range(3)])


async def _run(ctx, suite: str, security: str, owner_index: int):
    kwargs = {"triples": "dealer"} if suite == "semi2k" else {}
    backend = SecureBackend(await make_suite(ctx, suite, **kwargs))
    product = make_product(backend, security)
    owner, other = ctx.parties[owner_index], ctx.parties[(owner_index + 1) % len(ctx.parties)]
    mine = ctx.party == owner
    sv = await backend.input(other, V if ctx.party == other else None, shape=(D,))
    sw = await backend.input(other, W if ctx.party == other else None, shape=(N,))
    vm = await backend.input(other, np.stack([V, -2 * V], 1) if ctx.party == other else None,
                             shape=(D, 2))
    xv = await product.matvec(owner, X if mine else None, sv, (N, D))
    xv2 = await product.matvec(owner, X if mine else None, sv, (N, D))  # reused split
    xm = await product.matvec(owner, X if mine else None, vm, (N, D))
    xtw = await product.rmatvec(owner, X if mine else None, sw, (N, D))
    sums = await product.grouped_sum(owner, G if mine else None, sw, COUNTS)
    return [await t.reveal() for t in (xv, xv2, xm, xtw, sums)]


def _check(results) -> None:
    xv, xv2, xm, xtw, sums = results
    assert np.allclose(xv, X @ V, atol=2e-3)
    assert np.allclose(xv2, X @ V, atol=2e-3)
    assert np.allclose(xm, X @ np.stack([V, -2 * V], 1), atol=4e-3)
    assert np.allclose(xtw, X.T @ W, atol=2e-2)
    assert np.allclose(sums, _expected_sums(W), atol=2e-3)


@pytest.mark.parametrize("parties", [2, 3, 4])
def test_he_product_equals_numpy(parties):
    names = ["bank", "gov", "fin", "telco"][:parties]
    results = run_parties(names, lambda ctx: _run(ctx, "semi2k", "dishonest-majority", 1))
    for party in names:
        _check(results[party])


@pytest.mark.parametrize("owner_index", [0, 1, 2])
def test_rep3_product_equals_numpy(owner_index):
    results = run_parties(["bank", "gov", "fin"],
                          lambda ctx: _run(ctx, "rep3", "honest-majority", owner_index))
    _check(results["bank"])


@pytest.mark.parametrize(("suite", "security", "parties"), [
    ("semi2k", "dishonest-majority", ["a", "b"]), ("rep3", "honest-majority", ["a", "b", "c"])])
def test_fast_products_equal_reference(suite, security, parties):
    ref = run_parties(parties, lambda ctx: _run(ctx, suite, "reference", 0))["a"]
    fast = run_parties(parties, lambda ctx: _run(ctx, suite, security, 0))["a"]
    for got, want in zip(fast, ref, strict=True):
        assert np.allclose(got, want, atol=2e-2)


async def _integer_sums(ctx):
    backend = SecureBackend(await make_suite(ctx, "semi2k", triples="dealer"))
    labels = (W > 0).astype(np.int64)
    sl = await backend.input("b", labels if ctx.party == "b" else None, shape=(N,),
                             integer=True)
    sums = await make_product(backend).grouped_sum("a", G if ctx.party == "a" else None, sl,
                                                   COUNTS)
    return await sums.reveal(), sums.scale


def test_he_grouped_sum_of_integer_labels_is_exact():
    sums, scale = run_parties(["a", "b"], _integer_sums)["a"]
    assert scale == 0
    assert np.array_equal(sums, _expected_sums((W > 0).astype(np.float64)))


def _decrypted_values(x: np.ndarray, monkeypatch) -> np.ndarray:
    """What the key holder decrypts (before the lift) in one 2-party product by x."""
    seen: list[np.ndarray] = []
    original = product_he.BfvContext.decrypt_compact

    def spy(self, keys, words, positions):
        values = original(self, keys, words, positions)
        seen.append(values)
        return values

    monkeypatch.setattr(product_he.BfvContext, "decrypt_compact", spy)

    async def job(ctx):
        backend = SecureBackend(await make_suite(ctx, "semi2k", triples="dealer"))
        sv = await backend.input("b", np.ones(D) if ctx.party == "b" else None, shape=(D,))
        await make_product(backend).matvec("a", x if ctx.party == "a" else None, sv, (N, D))

    run_parties(["a", "b"], job)
    return np.concatenate(seen)


def test_key_holder_sees_uniform_values_whatever_the_matrix(monkeypatch):
    zero = _decrypted_values(np.zeros((N, D)), monkeypatch)
    big = _decrypted_values(np.full((N, D), 100.0), monkeypatch)
    for values in (zero, big):
        top = values >> np.uint64(product_he.PLAIN_BITS - 4)  # top 4 bits of mod-2^59 values
        counts = np.bincount(top.astype(np.int64), minlength=16)
        # roughly uniform (masked): 512 draws over 16 bins expect 32 each; a bin at or
        # under a quarter of that has probability ~1e-6 under uniformity (half of it, the
        # old bound, failed about one run in forty)
        assert counts.min() > 0.25 * values.size / 16
    # the unmasked results would be constant 0 or 700 * 2^32: masked they never repeat
    assert len(np.unique(zero)) == zero.size and len(np.unique(big)) == big.size


def test_he_rejects_out_of_range_entries():
    async def job(ctx):
        backend = SecureBackend(await make_suite(ctx, "semi2k", triples="dealer"))
        sv = await backend.input("b", V if ctx.party == "b" else None, shape=(D,))
        await make_product(backend).matvec("a", np.full((N, D), 1e6) if ctx.party == "a"
                                           else None, sv, (N, D))

    with pytest.raises(Exception, match="too large"):
        run_parties(["a", "b"], job)


def test_unknown_security_is_refused():
    with pytest.raises(MpcError, match="security"):
        make_product(None, "quantum")  # type: ignore[arg-type]


def test_rep3_split_spilled_to_a_file_gives_the_same_products(monkeypatch):
    monkeypatch.setenv("MESHMPC_REP3_MEMORY_MB", "0")
    results = run_parties(["bank", "gov", "fin"],
                          lambda ctx: _run(ctx, "rep3", "honest-majority", 0))
    _check(results["fin"])


@pytest.mark.parametrize("p", [1, 3])
def test_matmul_nn_kernel_equals_numpy(p):
    from meshmpc import _core

    rng = np.random.default_rng(p)
    a = rng.integers(0, 2**63, size=(37, 29), dtype=np.uint64) * np.uint64(3)
    b = rng.integers(0, 2**63, size=(29, p), dtype=np.uint64) * np.uint64(5)
    out = np.empty((37, p), dtype=np.uint64)
    _core.ring64_matmul_nn(a, b, out)
    assert np.array_equal(out, np.matmul(a, b, dtype=np.uint64))
    with pytest.raises(ValueError, match="does not match"):
        _core.ring64_matmul_nn(a, b, np.empty((36, p), dtype=np.uint64))


def test_matmul_fixed_kernel_encodes_like_the_ring():
    from meshmpc import _core
    from meshmpc.mpc.ring import RING64

    rng = np.random.default_rng(9)
    x = rng.normal(size=(23, 11)) * 50
    x[0, :3] = [0.5 / 65536, 1.5 / 65536, -2.5 / 65536]  # ties round to even, like np.rint
    b = rng.integers(0, 2**63, size=(11, 2), dtype=np.uint64)
    out = np.empty((23, 2), dtype=np.uint64)
    _core.ring64_matmul_fixed(x, b, out, 65536.0, 2.0**62)
    assert np.array_equal(out, np.matmul(RING64.encode(x, 16), b, dtype=np.uint64))
    x[5, 5] = np.nan
    with pytest.raises(ValueError, match="out of range"):
        _core.ring64_matmul_fixed(x, b, out, 65536.0, 2.0**62)


async def _four_party_rep3(ctx):
    """bank, gov, fin compute (rep3); telco is an input provider and owns X."""
    compute = ctx.parties[:3]
    backend = None
    if ctx.party in compute:
        backend = SecureBackend(await make_suite(ctx.subgroup(compute), "rep3"))
    product = make_product(backend, "honest-majority", ctx=ctx)
    mine = ctx.party == "telco"
    results = []
    for _ in range(2):  # the second product reuses the replicated split
        if backend is None:
            sv = sw = None
        else:
            sv = await backend.input("gov", V if ctx.party == "gov" else None, shape=(D,))
            sw = await backend.input("gov", W if ctx.party == "gov" else None, shape=(N,))
        xv = await product.matvec("telco", X if mine else None, sv, (N, D))
        xtw = await product.rmatvec("telco", X if mine else None, sw, (N, D))
        sums = await product.grouped_sum("telco", G if mine else None, sw, COUNTS)
        inside = await product.matvec("bank", X if ctx.party == "bank" else None, sv, (N, D))
        if backend is None:
            assert xv is None and xtw is None and sums is None
            continue
        results.append([await t.reveal() for t in (xv, xtw, sums, inside)])
    return results


def test_rep3_product_with_the_fourth_party_as_input_provider():
    results = run_parties(["bank", "gov", "fin", "telco"], _four_party_rep3)
    assert results["telco"] == []
    for xv, xtw, sums, inside in results["fin"]:
        assert np.allclose(xv, X @ V, atol=2e-3)
        assert np.allclose(xtw, X.T @ W, atol=2e-2)
        assert np.allclose(sums, _expected_sums(W), atol=2e-3)
        assert np.allclose(inside, X @ V, atol=2e-3)


class _FakeContext:
    def __init__(self, message):
        self.message = message

    async def recv(self, peer, tag):
        return self.message


@pytest.mark.parametrize("message", [None, [b"x"], [b"not a ciphertext"] * 3])
def test_he_owner_rejects_malformed_inputs_naming_the_party(message):
    import asyncio

    from meshmpc.ml.product_he_seal import BfvContext

    product = product_he.HeProduct.__new__(product_he.HeProduct)
    product.bfv = BfvContext()

    async def receive():
        raw = await product._receive_inputs(_FakeContext(message), "gov", 3)
        return [product.bfv.load_cipher(c, "gov") for c in raw]

    with pytest.raises(MpcError, match="party gov"):
        asyncio.run(receive())


def test_rep3_rejects_a_malformed_seed_naming_the_party():
    from meshmpc.ml.product_rep3 import _check_seed

    with pytest.raises(MpcError, match="party telco"):
        _check_seed(b"short", "telco")


def test_rep3_mini_batches_of_one_matrix_split_it_once():
    """Products by row blocks x[lo:hi] of one matrix (a training loop's mini-batches) equal
    numpy, and the owner sends the split once: later batches cost the reshare only."""
    batches = [(0, 100), (100, 230), (37, 300), (0, 300)]
    wide = RNG.normal(size=(N, 60))  # wide enough that the matrix outweighs the reshares
    v = RNG.normal(size=60)

    async def one(ctx):
        backend = SecureBackend(await make_suite(ctx, "rep3"))
        product = make_product(backend, "honest-majority")
        mine = ctx.party == "gov"
        sv = await backend.input("bank", v if ctx.party == "bank" else None, shape=(60,))
        sent, out = [], []
        for lo, hi in batches:
            before = ctx.traffic().bytes_sent
            part = wide[lo:hi] if mine else None
            xv = await product.matvec("gov", part, sv, (hi - lo, 60))
            sw = await backend.input("bank", W[lo:hi] if ctx.party == "bank" else None,
                                     shape=(hi - lo,))
            xtw = await product.rmatvec("gov", part, sw, (hi - lo, 60))
            sent.append(ctx.traffic().bytes_sent - before)
            out.append((await xv.reveal(), await xtw.reveal()))
        return sent, out

    results = run_parties(["bank", "gov", "fin"], one)
    for party in ("bank", "gov", "fin"):
        for (lo, hi), (xv, xtw) in zip(batches, results[party][1], strict=True):
            assert np.allclose(xv, wide[lo:hi] @ v, atol=2e-2)
            assert np.allclose(xtw, wide[lo:hi].T @ W[lo:hi], atol=2e-2)
    sent = results["gov"][0]
    assert sent[0] > N * 60 * 8  # the first batch ships D = X - R for the whole matrix
    assert max(sent[1:]) < N * 60 * 8 / 4  # later batches: the reshare, never the matrix
