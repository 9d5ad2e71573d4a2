"""ml.select: the secure correlation filter drops what the plaintext greedy rule drops."""

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.jobs.api import PartyInput, StepOutput
from meshmpc.ml.components_binning import binning, select
from meshmpc.ml.inprocess import run_component
from meshmpc.ml.woe import BinningError

N = 2500
PARAMS = {"triples": "dealer"}


def _data(seed: int = 3):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=N)
    y = (rng.random(N) < 1 / (1 + np.exp(-(z - 1.5)))).astype(np.int64)
    g1 = z + 0.5 * rng.normal(size=N)
    ids = np.arange(N)
    return {
        "bank": pa.table({"id": ids, "y": y, "b1": 0.5 * z + rng.normal(size=N),
                          "b2": g1 + 0.1 * rng.normal(size=N)}),
        "gov": pa.table({"id": ids, "g1": g1, "noise": rng.normal(size=N),
                         "g3": z + rng.normal(size=N)}),
        "fin": pa.table({"id": ids, "f1": g1 + 0.05 * rng.normal(size=N),
                         "f2": -z + 0.8 * rng.normal(size=N)}),
    }


PARTIES = {p: PartyInput(p, key="id", label="y" if p == "bank" else None)
           for p in ("bank", "gov", "fin")}


def _binned(tmp_path):
    tables = _data()
    inputs = {p: {"align": StepOutput(tables={"aligned": tables[p]})} for p in PARTIES}
    return run_component(binning, PARTIES, inputs, PARAMS, tmp_path,
                         party_params={"bank": {"min_bin_rows": 20}}, step_id="bins")


def _plain_greedy(binned, iv_min, corr_max):
    """The same rule on the pooled plaintext WOE columns."""
    cols, ivs = {}, {}
    for p, out in binned.items():
        for name, iv in out.report["iv"].items():
            if iv >= iv_min:
                cols[f"{p}.{name}"] = out.tables["features"].column(name).to_numpy()
                ivs[f"{p}.{name}"] = iv
    order = sorted(ivs, key=lambda k: -ivs[k])
    kept = []
    for name in order:
        if all(abs(np.corrcoef(cols[name], cols[k])[0, 1]) <= corr_max for k in kept):
            kept.append(name)
    return set(kept)


@pytest.mark.parametrize("corr_max", [0.7, 0.95])
def test_select_equals_plaintext(tmp_path, corr_max):
    binned = _binned(tmp_path)
    params = {**PARAMS, "corr_max": corr_max, "iv_min": 0.02}
    out = run_component(select, PARTIES, {p: {"bins": binned[p]} for p in PARTIES}, params,
                        tmp_path, step_id="select")
    got = {f"{p}.{n}" for p, o in out.items() for n in o.report["selected"]}
    assert got == _plain_greedy(binned, 0.02, corr_max)
    if corr_max == 0.7:
        assert len(got & {"fin.f1", "gov.g1", "bank.b2"}) == 1  # three near-copies: one stays
    for o in out.values():
        assert o.tables["features"].column_names[: len(o.report["selected"])] == \
            o.report["selected"]
        assert set(o.report["selected"]).isdisjoint(o.report["dropped"])
    assert "y" in out["bank"].tables["features"].column_names


def test_iv_threshold_and_top_k(tmp_path):
    binned = _binned(tmp_path)
    params = {**PARAMS, "iv_min": 0.05, "corr_max": 1.0, "top_k": 2}
    out = run_component(select, PARTIES, {p: {"bins": binned[p]} for p in PARTIES}, params,
                        tmp_path, step_id="select")
    got = {f"{p}.{n}" for p, o in out.items() for n in o.report["selected"]}
    ivs = {f"{p}.{n}": v for p, o in binned.items() for n, v in o.report["iv"].items()}
    assert got == set(sorted(ivs, key=lambda k: -ivs[k])[:2])
    assert "iv_min" in out["gov"].report["dropped"]["noise"]


def test_unknown_parameter(tmp_path):
    binned = _binned(tmp_path)
    with pytest.raises(BinningError, match="unknown ml.select"):
        run_component(select, PARTIES, {p: {"bins": binned[p]} for p in PARTIES},
                      {"corr": 0.5}, tmp_path, step_id="select")


def test_job_level_honest_majority_four_parties(tmp_path):
    """security set on the job (step options), four parties: telco is an input provider
    and the result equals the plaintext greedy rule (it used to fail, unknown party)."""
    tables = _data()
    rng = np.random.default_rng(8)
    g1 = tables["gov"].column("g1").to_numpy()
    tables["telco"] = pa.table({"id": np.arange(N), "t1": g1 + 0.02 * rng.normal(size=N),
                                "t2": rng.normal(size=N) - tables["fin"].column("f2").to_numpy()})
    parties = {**PARTIES, "telco": PartyInput("telco", key="id")}
    options = {"security": "honest-majority"}
    inputs = {p: {"align": StepOutput(tables={"aligned": tables[p]})} for p in parties}
    binned = run_component(binning, parties, inputs, {}, tmp_path / "b",
                           party_params={"bank": {"min_bin_rows": 20}}, step_id="bins",
                           options=options)
    out = run_component(select, parties, {p: {"bins": binned[p]} for p in parties},
                        {"corr_max": 0.7}, tmp_path / "s", step_id="select", options=options)
    got = {f"{p}.{n}" for p, o in out.items() for n in o.report["selected"]}
    assert got == _plain_greedy(binned, 0.02, 0.7)
    assert len(got & {"fin.f1", "gov.g1", "bank.b2", "telco.t1"}) == 1
