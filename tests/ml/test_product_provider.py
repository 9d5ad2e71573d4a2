"""The HE product of an input provider's matrix (an owner outside the compute parties):
exact mod 2^64 against numpy, and what each party sees is masked or encrypted."""

import numpy as np
import pytest

from meshmpc.ml import product_he_provider as provider_mod
from meshmpc.ml.product_he_provider import ProviderProduct
from meshmpc.ml.product_he_seal import PLAIN_MODULUS
from meshmpc.mpc.errors import MpcError
from meshmpc.net.memory import run_parties

RNG = np.random.default_rng(11)
PROVIDER = "fin"


def _shares(v: np.ndarray, count: int) -> list[np.ndarray]:
    """Uniform uint64 additive shares of the int64 array v."""
    parts = [RNG.integers(0, 2**64, size=v.shape, dtype=np.uint64) for _ in range(count - 1)]
    last = v.astype(np.int64).view(np.uint64) - np.sum(parts, axis=0, dtype=np.uint64) \
        if parts else v.astype(np.int64).view(np.uint64)
    return [*parts, last]


def _run(compute, x, vectors, calls, rows_key=None, hits=None):
    """Run ``calls`` = [(transpose, vector index)] products; returns each party's outputs
    (``rows_key``: the provider caches its NTT plaintexts; ``hits`` gets the cache hits)."""
    parties = [PROVIDER, *compute]
    shares = {i: _shares(v, len(compute)) for i, v in enumerate(vectors)}

    async def one(ctx):
        he = ProviderProduct(ctx, PROVIDER, compute, f=16)
        out = []
        for transpose, index in calls:
            share = None
            if ctx.party != PROVIDER:
                share = shares[index][compute.index(ctx.party)]
                share = share.reshape(share.shape[0], -1)
            k = vectors[index].reshape(vectors[index].shape[0], -1).shape[1]
            out.append(await he.product(x if ctx.party == PROVIDER else None, share,
                                        x.shape, transpose, k, integer=True,
                                        rows_key=rows_key))
        if hits is not None and he.cache is not None:
            hits.append(he.cache.hits)
        return out

    return run_parties(parties, one)


def _opened(results, compute, i):
    return np.sum([results[p][i] for p in compute], axis=0, dtype=np.uint64)


@pytest.mark.parametrize("compute", [["bank", "gov"], ["bank", "gov", "telco"]])
def test_provider_product_equals_numpy_mod_2_64(compute):
    """matvec and rmatvec, 2 and 3 compute parties, shapes not multiples of the block,
    all-zero rows and a whole all-zero row block: the shares sum to X v exactly."""
    n, d = 1234, 9
    x = RNG.integers(-2**20, 2**20, size=(n, d)).astype(np.float64)
    x[5:17] = 0.0
    x[900:] = 0.0  # the last row blocks are all zero: no plaintext product there
    v = RNG.integers(-2**20, 2**20, size=d)
    r = RNG.integers(-2**12, 2**12, size=n)
    vm = RNG.integers(-2**20, 2**20, size=(d, 2))
    results = _run(compute, x, [v, r, vm], [(False, 0), (True, 1), (False, 2)])
    xi = x.astype(np.int64).view(np.uint64)
    assert results[PROVIDER] == [None, None, None]
    want = [np.matmul(xi, v.view(np.uint64), dtype=np.uint64),
            np.matmul(xi.T, r.view(np.uint64), dtype=np.uint64),
            np.matmul(xi, vm.view(np.uint64), dtype=np.uint64)]
    for i, expected in enumerate(want):
        got = _opened(results, compute, i)
        assert np.array_equal(got.reshape(expected.shape), expected), f"product {i}"


def test_views_are_masked_and_encrypted(monkeypatch):
    """What each compute party decrypts is uniform mod t and changes from call to call;
    the provider receives ciphertexts only (SEAL-sized, fresh per call), and the mask sum
    it hands over differs per call."""
    compute = ["bank", "gov"]
    decrypted, received, masks = [], [], []
    orig_decrypt = ProviderProduct._decrypt_results
    orig_inputs = ProviderProduct._receive_inputs

    async def spy_decrypt(self, ctx, owner, limbs, lay):
        out = await orig_decrypt(self, ctx, owner, limbs, lay)
        decrypted.append((self.party, out.copy()))
        return out

    async def spy_inputs(self, ctx, holder, expected):
        raw = await orig_inputs(self, ctx, holder, expected)
        received.append((holder, raw))
        return raw

    orig_mask = ProviderProduct._mask

    def spy_mask(self, raw, rows, k):
        masks.append(raw.copy())
        return orig_mask(self, raw, rows, k)

    monkeypatch.setattr(ProviderProduct, "_decrypt_results", spy_decrypt)
    monkeypatch.setattr(ProviderProduct, "_receive_inputs", spy_inputs)
    monkeypatch.setattr(ProviderProduct, "_mask", spy_mask)
    n, d = 4000, 6
    x = np.ones((n, d))  # every output is the same value: only the masks vary
    v = np.zeros(d, dtype=np.int64)
    _run(compute, x, [v], [(False, 0), (False, 0)])
    assert len(decrypted) == 4 and len(received) == 4 and len(masks) == 2
    for _party, values in decrypted:
        scaled = values.astype(np.float64) / PLAIN_MODULUS
        assert values.max() < PLAIN_MODULUS
        assert abs(scaled.mean() - 0.5) < 0.03 and abs((scaled < 0.25).mean() - 0.25) < 0.03
        assert np.unique(values).size > 0.99 * values.size
    bank = [vals for party, vals in decrypted if party == "bank"]
    assert not np.array_equal(bank[0], bank[1])
    assert not np.array_equal(masks[0], masks[1])
    for holder, raw in received:
        assert holder in compute
        assert all(len(c) > 8 * 8192 for c in raw)  # whole ciphertexts, not values
    first, second = (raw for holder, raw in received if holder == "bank")
    assert first != second  # fresh encryptions of the same share


def test_provider_refuses_a_bad_request_naming_the_party():
    async def one(ctx):
        provided = provider_mod.ProvidedMatrix(ctx, PROVIDER, ["bank", "gov"], (10, 3), 16,
                                               None)
        if ctx.party == "bank":
            await provided.link.send(PROVIDER, "req", {"op": "matvec", "lo": 5, "hi": 11,
                                                       "k": 1})
            return None
        if ctx.party == PROVIDER:
            with pytest.raises(MpcError, match="party bank.*rows must lie in"):
                await provided.serve(np.zeros((10, 3)))
        return None

    run_parties([PROVIDER, "bank", "gov"], one)


def test_cached_plaintexts_give_the_same_exact_products():
    """Repeated products of the same rows reuse the provider's NTT plaintexts (a training
    loop's mini-batches every epoch) and stay exact; fresh masks every call."""
    compute = ["bank", "gov"]
    n, d = 700, 5
    x = RNG.integers(-2**20, 2**20, size=(n, d)).astype(np.float64)
    v = RNG.integers(-2**20, 2**20, size=d)
    r = RNG.integers(-2**12, 2**12, size=n)
    hits: list[int] = []
    calls = [(False, 0), (True, 1), (False, 0), (True, 1)]
    results = _run(compute, x, [v, r], calls, rows_key=(0, n), hits=hits)
    xi = x.astype(np.int64).view(np.uint64)
    assert hits and hits[0] > 0
    for i, (transpose, _) in enumerate(calls):
        want = np.matmul(xi.T, r.view(np.uint64), dtype=np.uint64) if transpose else \
            np.matmul(xi, v.view(np.uint64), dtype=np.uint64)
        assert np.array_equal(_opened(results, compute, i).reshape(-1), want)
    assert not np.array_equal(results["bank"][0], results["bank"][2])
