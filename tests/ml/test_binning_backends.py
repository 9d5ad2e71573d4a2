"""The owner product is chosen from `security`; fast products plug in through make_product."""

import sys
import types

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.jobs.api import PartyInput, StepOutput
from meshmpc.ml import backends
from meshmpc.ml.components_binning import binning
from meshmpc.ml.inprocess import run_component
from meshmpc.ml.product import SharedInputProduct
from meshmpc.mpc.errors import MpcError
from meshmpc.net.memory import run_parties


class CountingProduct(SharedInputProduct):
    calls = 0

    async def grouped_sum(self, owner, groups, v, n_groups):
        CountingProduct.calls += 1
        return await super().grouped_sum(owner, groups, v, n_groups)


def _make_product(backend, security="dishonest-majority", ctx=None):
    assert ctx is not None and security == "dishonest-majority"
    return CountingProduct(backend)


def test_fast_product_plugs_in(monkeypatch, tmp_path):
    fake = types.ModuleType("fake_fast_product")
    fake.make_product = _make_product
    monkeypatch.setitem(sys.modules, "fake_fast_product", fake)
    monkeypatch.setattr(backends, "FACTORY_MODULES", ("fake_fast_product",))
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(np.int64)
    tables = {"bank": pa.table({"y": y}), "gov": pa.table({"x": rng.normal(size=400) + y})}
    parties = {"bank": PartyInput("bank", label="y"), "gov": PartyInput("gov")}
    inputs = {p: {"align": StepOutput(tables={"aligned": t})} for p, t in tables.items()}
    params = {"triples": "dealer", "bins": 4, "grouped_sum": "product"}
    out = run_component(binning, parties, inputs, params, tmp_path,
                        party_params={"bank": {"min_bin_rows": 20}})
    assert CountingProduct.calls == 2  # one grouped_sum per party process, one owner
    assert out["gov"].report["iv"]["x"] > 0.1


def test_compute_parties_default_and_errors():
    assert backends.compute_parties(["gov", "bank", "fin", "telco"], "bank", None) == \
        ["bank", "gov", "fin"]
    with pytest.raises(MpcError, match="three distinct"):
        backends.compute_parties(["a", "b", "c"], "a", ["a", "a", "b"])


def test_honest_majority_four_parties_needs_the_rep3_product(monkeypatch):
    monkeypatch.setattr(backends, "fast_factory", lambda: None)

    async def one(ctx):
        return await backends.owner_product(ctx, {"security": "honest-majority"}, "a")

    with pytest.raises(MpcError, match="more than three parties needs the rep3"):
        run_parties(["a", "b", "c", "d"], one)
