"""The HE grouped sum of ml.binning: per-bin label sums equal numpy's, cross terms never
reach a slot, and the fast path gives the bins of the OwnerProduct path."""

import numpy as np
import pytest

from meshmpc.ml import grouped_he
from meshmpc.ml.grouped_he import PLAIN_MODULUS, POLY_DEGREE
from meshmpc.mpc.errors import MpcError
from meshmpc.net.memory import run_parties


def _bincounts(groups, y, n_groups):
    return np.concatenate([np.bincount(groups[:, j], weights=y, minlength=b)
                           for j, b in enumerate(n_groups)]).astype(np.int64)


def _negacyclic(a, b):
    full = np.convolve(a.astype(np.int64), b.astype(np.int64))
    out = full[:POLY_DEGREE].copy()
    out[: full.size - POLY_DEGREE] -= full[POLY_DEGREE:]
    return out


def test_plaintext_construction_puts_only_bin_sums_on_slots():
    """Without encryption: sum_c y_c(x) P_c(x) holds each feature's per-bin sums at the
    slot coefficients, although every block's cross terms are dense elsewhere."""
    rng = np.random.default_rng(1)
    n, n_groups = 3000, [11, 10, 3, 1, 7]
    groups = np.column_stack([rng.integers(0, b, n) for b in n_groups])
    y = rng.integers(0, 2, n)
    lay = grouped_he.plan(n, n_groups)
    assert max(sum(lay.slots[f] for f in g) for g in lay.groups) * lay.k <= POLY_DEGREE
    slot_sums = []
    for g in range(len(lay.groups)):
        coeffs = grouped_he.block_coefficients(groups, lay, g, 0, lay.blocks)
        signed = np.where(coeffs == PLAIN_MODULUS - 1, -1, coeffs.astype(np.int64))
        acc = np.zeros(POLY_DEGREE, np.int64)
        for c in range(lay.blocks):
            block = np.zeros(POLY_DEGREE, np.int64)
            part = y[c * lay.k:(c + 1) * lay.k]
            block[: part.size] = part
            acc += _negacyclic(block, signed[c])
        positions = lay.positions(g)
        assert np.count_nonzero(np.delete(acc, positions)) > POLY_DEGREE // 2  # cross terms
        slot_sums.append(acc[positions])
    got = grouped_he._bins_from_slots(lay, n_groups, slot_sums, int(y.sum()))
    assert np.array_equal(got, _bincounts(groups, y, n_groups))


def _run_protocol(n, n_groups, seed=2):
    rng = np.random.default_rng(seed)
    groups = np.column_stack([rng.integers(0, b, n) for b in n_groups])
    y = rng.integers(0, 2, n)

    async def one(ctx):
        if ctx.party == "bank":
            enc = grouped_he.BankEncryption(y)
            lay = await grouped_he.bank_send(ctx, "gov", enc, n_groups)
            return await grouped_he.bank_receive(ctx, "gov", enc, lay, n_groups)
        await grouped_he.owner_side(ctx, "bank", groups, n_groups)
        return None

    out = run_parties(["bank", "gov"], one)
    return out["bank"], _bincounts(groups, y, n_groups)


def test_encrypted_counts_equal_numpy():
    n_groups = [11, 10, 10, 2, 1, 6] * 4
    got, expected = _run_protocol(5000, n_groups)
    assert np.array_equal(got, expected)


def test_encrypted_counts_on_two_kernel_threads(monkeypatch):
    monkeypatch.setattr(grouped_he, "GROUPS_PER_TASK", 3)
    monkeypatch.setenv("MESHMPC_HE_WORKERS", "2")
    got, expected = _run_protocol(2000, [10] * 9, seed=4)
    assert np.array_equal(got, expected)


def test_flooding_fits_the_modulus_at_a_million_rows_and_refuses_beyond():
    bfv = grouped_he.GroupContext()
    lay = grouped_he.plan(1_000_000, [11] * 500)
    assert grouped_he.flood_bits(lay, bfv.q_bits) + grouped_he.PLAIN_BITS + 3 <= bfv.q_bits
    with pytest.raises(MpcError, match="fewer than"):
        grouped_he.plan(PLAIN_MODULUS, [10])
    wide = grouped_he.GroupLayout(1 << 23, 1, (1,) * 8192, (tuple(range(8192)),),
                                  tuple(range(8192)))
    with pytest.raises(MpcError, match="too large to flood"):
        grouped_he.flood_bits(wide, bfv.q_bits)


def test_binning_fast_path_is_the_default_and_equals_the_product_path(tmp_path, monkeypatch):
    """ml.binning at three parties: the default (HE grouped sums, no suite at all) gives
    the same models and IVs as the label shared through the OwnerProduct."""
    import pyarrow as pa

    from meshmpc.jobs.api import PartyInput, StepOutput
    from meshmpc.ml.components_binning import binning
    from meshmpc.ml.inprocess import run_component

    rng = np.random.default_rng(6)
    n = 1500
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(risk - 1.2)))).astype(np.int64)
    tables = {"bank": pa.table({"y": y, "b": risk + rng.normal(size=n)}),
              "gov": pa.table({"g1": risk + rng.normal(size=n), "g2": rng.normal(size=n),
                               "g3": np.where(rng.random(n) < 0.2, np.nan, risk)}),
              "fin": pa.table({"f1": -risk + rng.normal(size=n)})}
    parties = {p: PartyInput(p, label="y" if p == "bank" else None) for p in tables}
    inputs = {p: {"align": StepOutput(tables={"aligned": t})} for p, t in tables.items()}
    calls = []
    real = grouped_he.owner_side

    async def counting(*args, **kwargs):
        calls.append(args[1])
        return await real(*args, **kwargs)

    monkeypatch.setattr(grouped_he, "owner_side", counting)
    common = {"party_params": {"bank": {"min_bin_rows": 20}}, "step_id": "bins"}
    fast = run_component(binning, parties, inputs, {}, tmp_path / "he", **common)
    assert sorted(calls) == ["bank", "bank"]  # gov and fin each ran the HE exchange
    reference = {"triples": "dealer", "grouped_sum": "product"}
    slow = run_component(binning, parties, inputs, reference, tmp_path / "product", **common)
    assert len(calls) == 2
    for p in tables:
        assert fast[p].models["binning"] == slow[p].models["binning"]
    assert fast["bank"].report["iv_all"] == slow["bank"].report["iv_all"]
    assert fast["bank"].report["iv_all"]["gov.g1"] > 0.1


def test_malformed_count_ciphertexts_are_refused_naming_the_owner():
    n_groups = [5, 5]
    y = np.random.default_rng(0).integers(0, 2, 300)

    async def one(ctx):
        if ctx.party == "bank":
            enc = grouped_he.BankEncryption(y)
            lay = await grouped_he.bank_send(ctx, "gov", enc, n_groups)
            return await grouped_he.bank_receive(ctx, "gov", enc, lay, n_groups)
        await ctx.recv("bank", "pk")
        await ctx.recv("bank", "y/0")
        words = np.full((2, 8), 2**63, dtype=np.uint64)  # above both primes
        await ctx.send("bank", "out/0", [words, np.zeros((2, POLY_DEGREE), np.uint64)])
        return None

    with pytest.raises(MpcError, match="party gov: a count ciphertext has the wrong"):
        run_parties(["bank", "gov"], one)
