"""The fused C kernel of the HE grouped sum (csrc/bfv_sparse.c): its NTT is a negacyclic
convolution, and its products equal SEAL's multiply_plain / add_inplace bit for bit."""

import numpy as np
import pytest

from meshmpc import _core
from meshmpc.ml import grouped_he
from meshmpc.ml.grouped_kernel import FusedProducts, bins_by_feature, primitive_root

SMALL_N = 16
SMALL_P = 7681  # 1 mod 32


def _negacyclic_mod(a, b, p):
    n = a.size
    full = np.convolve(a.astype(object), b.astype(object))
    out = full[:n].copy()
    out[: full.size - n] -= full[n:]
    return np.array([int(v) % p for v in out], dtype=np.uint64)


def _small_tables():
    primes = np.array([SMALL_P], dtype=np.uint64)
    roots = np.array([primitive_root(SMALL_P, SMALL_N)], dtype=np.uint64)
    return primes, _core.bfv_tables(primes, roots, SMALL_N)


def test_ntt_multiplies_negacyclically_and_inverts():
    primes, tabs = _small_tables()
    rng = np.random.default_rng(0)
    a = rng.integers(0, SMALL_P, (1, SMALL_N), dtype=np.uint64)
    b = rng.integers(0, SMALL_P, (1, SMALL_N), dtype=np.uint64)
    fa, fb = _core.bfv_ntt(a.copy(), primes, tabs), _core.bfv_ntt(b.copy(), primes, tabs)
    assert not np.array_equal(fa, a)
    prod = (fa.astype(object) * fb.astype(object)) % SMALL_P
    got = _core.bfv_ntt(prod.astype(np.uint64), primes, tabs, True)
    assert np.array_equal(got[0], _negacyclic_mod(a[0], b[0], SMALL_P))
    assert np.array_equal(_core.bfv_ntt(fa, primes, tabs, True), a)


def test_kernel_rejects_bad_roots_and_unreduced_coefficients():
    primes = np.array([SMALL_P], dtype=np.uint64)
    with pytest.raises(ValueError, match="primitive"):
        _core.bfv_tables(primes, np.array([1], dtype=np.uint64), SMALL_N)
    _, tabs = _small_tables()
    with pytest.raises(ValueError, match="not reduced"):
        _core.bfv_ntt(np.full((1, SMALL_N), SMALL_P, dtype=np.uint64), primes, tabs)
    with pytest.raises(ValueError, match="not 1 mod"):
        primitive_root(7, 16)


def _seal_sums(bfv, cts, groups, lay):
    """SEAL's own sum of multiply_plain products per plaintext, coefficient form."""
    ev, out = bfv.evaluator, []
    for g in range(len(lay.groups)):
        coeffs = grouped_he.block_coefficients(groups, lay, g, 0, lay.blocks)
        acc = None
        for b in range(lay.blocks):
            if not coeffs[b].any():
                continue
            ct = bfv.load(cts[b], "bank")
            ev.transform_to_ntt_inplace(ct)
            plain = bfv.plaintext(coeffs[b])
            ev.transform_to_ntt_inplace(plain, bfv.parms_id)
            term = ev.multiply_plain(ct, plain)
            if acc is None:
                acc = term
            else:
                ev.add_inplace(acc, term)
        assert acc is not None
        ev.transform_from_ntt_inplace(acc)
        out.append(bfv.words(acc))
    return np.stack(out)


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_products_equal_seal_bit_for_bit(threads):
    """Several features per plaintext, a one-bin feature (no slot), rows in the last bin
    (no monomial), a partial last block, negative exponents: all as SEAL computes."""
    rng = np.random.default_rng(3)
    n, n_groups = 2500, [11, 10, 3, 1, 7, 10, 2, 4]
    cols = [rng.integers(0, b, n) for b in n_groups]
    cols[2][:800] = 2  # a stretch in the last bin: some blocks have no monomial for it
    groups = np.asfortranarray(np.column_stack(cols).astype(np.uint8))
    enc = grouped_he.BankEncryption(rng.integers(0, 2, n))
    lay = grouped_he.plan(n, n_groups)
    assert lay.blocks > 1 and n % lay.k and max(len(g) for g in lay.groups) > 1
    bfv = enc.bfv
    cts = enc.blocks(lay.k)
    words = np.stack([bfv.words(bfv.load(c, "bank")) for c in cts])
    fused = FusedProducts(bfv.primes, grouped_he.POLY_DEGREE)
    fused.to_ntt(words)
    got = fused.group_sums(words, bins_by_feature(groups), lay, 0, len(lay.groups), threads)
    assert np.array_equal(got, _seal_sums(bfv, cts, groups, lay))


def test_fused_reduction_over_many_blocks_matches_big_integers():
    """More blocks than one 128-bit accumulation holds (the kernel reduces every 256 or
    so): the sum equals an exact reference, per coefficient. Each block's plaintext is
    1 + x^-1 (rows 0 and 1 in bin 0, the others in the last bin), x^-1 = -x^(n-1)."""
    primes = grouped_he.GroupContext().primes  # 1 mod 2^14: also NTT primes for n = 1024
    n = k = 1024
    blocks = 600
    rng = np.random.default_rng(9)
    ct = np.stack([rng.integers(0, int(p), (blocks, 2, n), dtype=np.uint64) for p in primes],
                  axis=2)
    bins = np.ones((1, blocks * k), dtype=np.uint8)
    bins[0, ::k] = 0
    bins[0, 1::k] = 0
    lay = grouped_he.GroupLayout(blocks * k, k, (1,), ((0,),), (0,))
    fused = FusedProducts(primes, n)
    got = fused.group_sums(fused.to_ntt(ct.copy()), bins, lay, 0, 1, 2)[0]
    lo = (ct & np.uint64(0xFFFFFFFF)).sum(axis=0)  # < 600 * 2^32: no overflow
    hi = (ct >> np.uint64(32)).sum(axis=0)
    ref = np.empty_like(got)
    for c in range(2):
        for i, p in enumerate(primes.tolist()):
            total = [(int(h) << 32) + int(v) for h, v in zip(hi[c, i], lo[c, i], strict=True)]
            shifted = [*total[1:], -total[0]]
            ref[c, i] = [(a + b) % p for a, b in zip(total, shifted, strict=True)]
    assert np.array_equal(got, ref)


def test_kernel_rejects_layouts_that_would_write_past_the_polynomial():
    """Slots beyond N / K, or fewer blocks than the rows need: a clear error, no write."""
    primes = grouped_he.GroupContext().primes
    n = k = 1024
    fused = FusedProducts(primes, n)
    ct = np.zeros((2, 2, primes.size, n), dtype=np.uint64)
    bins = np.zeros((1, 2 * k), dtype=np.uint8)
    wide = grouped_he.GroupLayout(2 * k, k, (2,), ((0,),), (0,))  # 2 slots x K > N
    with pytest.raises(ValueError, match="out of range"):
        fused.group_sums(ct, bins, wide, 0, 1, 1)
    short = grouped_he.GroupLayout(3 * k, k, (1,), ((0,),), (0,))  # 3 blocks of rows, 2 given
    with pytest.raises(ValueError, match="out of range"):
        fused.group_sums(ct, np.zeros((1, 3 * k), dtype=np.uint8), short, 0, 1, 1)
