"""ml.binning over the in-memory mesh equals the plaintext computation and toad."""

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.jobs.api import PartyInput, StepOutput
from meshmpc.ml.binning import Binning
from meshmpc.ml.binning_protocol import decoded
from meshmpc.ml.bins import fine_bins
from meshmpc.ml.components_binning import binning
from meshmpc.ml.inprocess import run_component
from meshmpc.ml.woe import BinningError

toad_stats = pytest.importorskip("toad.stats")

N = 1200
RNG = np.random.default_rng(11)
RISK = RNG.normal(size=N)
LABEL = (RNG.random(N) < 1 / (1 + np.exp(-(1.2 * RISK - 1.5)))).astype(np.int64)
IDS = np.arange(N)
DEALER = {"triples": "dealer", "bins": 6}


def _tables() -> dict[str, pa.Table]:
    r = np.random.default_rng(5)
    missing = r.random(N) < 0.15
    return {
        "bank": pa.table({"id": IDS, "y": LABEL, "amount": r.lognormal(0, 1, N) + 0.3 * RISK}),
        "gov": pa.table({"id": IDS, "capital": RISK + r.normal(size=N),
                         "kind": pa.array(r.choice(["ltd", "sole", "coop"], N)),
                         "constant": np.full(N, 3.0),
                         "empty": pa.nulls(N, pa.float64())}),
        "fin": pa.table({"id": IDS, "overdue": pa.array(np.where(missing, 0, RISK), mask=missing),
                         "count": r.poisson(np.exp(0.3 * RISK))}),
        "telco": pa.table({"id": IDS, "tenure": -RISK + r.normal(size=N)}),
    }


def _parties(names):
    return {p: PartyInput(p, key="id", label="y" if p == "bank" else None) for p in names}


def _run(names, tmp_path, params=DEALER, party_params=None, tables=None, options=None):
    tables = tables or _tables()
    inputs = {p: {"align": StepOutput(tables={"aligned": tables[p]})} for p in names}
    return run_component(binning, _parties(names), inputs, params, tmp_path,
                         party_params=party_params or {"bank": {"min_bin_rows": 20}},
                         step_id="bins", options=options)


def _toad_check(model: Binning, table: pa.Table, woe_table: pa.Table) -> None:
    """Each feature's WOE per bin and IV equal toad's on the final bins of the same rows."""
    for name, feature in model.features.items():
        bins = feature.bin_index(table.column(name), feature.n_bins)
        iv = float(toad_stats.IV(bins, LABEL))
        assert abs(feature.iv - iv) < 1e-9, name
        for b in np.unique(bins):
            expected = toad_stats.WOE(*toad_stats.probability(LABEL, mask=bins == b))
            assert abs(feature.woe[b] - expected) < 1e-9, (name, b)
        assert np.array_equal(woe_table.column(name).to_numpy(), feature.woe[bins])


@pytest.mark.parametrize("names", [["bank", "gov"], ["bank", "gov", "fin"],
                                   ["bank", "gov", "fin", "telco"]])
def test_binning_equals_toad(names, tmp_path):
    out = _run(names, tmp_path)
    tables = _tables()
    for party in names:
        model = Binning.from_dict(out[party].models["binning"])
        features = out[party].tables["features"]
        _toad_check(model, tables[party], features)
        assert model.transform(tables[party]).equals(decoded(features.select(model.order)))
        assert out[party].report["iv"] == pytest.approx(model.iv())
    bank = out["bank"]
    assert bank.tables["features"].column("y").to_numpy().tolist() == LABEL.tolist()
    expected = {f"{p}.{f}" for p in names for f in out[p].report["iv"]}
    assert set(bank.report["iv_all"]) == expected
    assert "iv_all" not in out["gov"].report and "y" not in out["gov"].tables["features"]
    assert bank.report["iv_all"]["gov.capital"] == out["gov"].report["iv"]["capital"]


def test_secure_counts_equal_plaintext(tmp_path):
    out = _run(["bank", "gov", "fin"], tmp_path)
    for party in ("gov", "fin"):
        model = Binning.from_dict(out[party].models["binning"])
        for name, feature in model.features.items():
            bins = feature.bin_index(_tables()[party].column(name), feature.n_bins)
            assert np.array_equal(np.bincount(bins, minlength=feature.n_bins), feature.count)
    assert out["bank"].report["iv_all"]["gov.capital"] > 0.1  # the planted signal is found


def test_edge_columns(tmp_path):
    gov = Binning.from_dict(_run(["bank", "gov"], tmp_path).get("gov").models["binning"])
    assert gov.features["constant"].n_bins == 1 and gov.features["constant"].iv == 0.0
    assert gov.features["empty"].n_bins == 1 and gov.features["empty"].woe[0] == 0.0
    fin = Binning.from_dict(_run(["bank", "fin"], tmp_path / "f").get("fin").models["binning"])
    overdue = fin.features["overdue"]
    assert overdue.missing_bin == overdue.n_bins - 1  # 15 % missing: a bin of its own
    assert overdue.bins()[-1]["category"] == [None]


def test_empty_and_single_class_bins(tmp_path):
    tables = _tables()
    x = np.where(RISK > 1.2, 10.0 + RISK, RISK)  # a gap: equal-width bins in it are empty
    y = np.where(RISK > 1.2, 1, LABEL)  # the top bin holds bads only
    tables["bank"] = tables["bank"].set_column(1, "y", pa.array(y))
    tables["gov"] = pa.table({"id": IDS, "x": x})
    out = _run(["bank", "gov"], tmp_path, params={**DEALER, "method": "equal_width", "bins": 8},
               tables=tables)
    model = Binning.from_dict(out["gov"].models["binning"])
    feature = model.features["x"]
    assert np.all(feature.count > 0) and feature.n_bins < 8
    assert np.all(np.isfinite(feature.woe)) and feature.woe[-1] == feature.woe.max()
    bins = feature.bin_index(tables["gov"].column("x"), feature.n_bins)
    assert abs(feature.iv - float(toad_stats.IV(bins, y))) < 1e-9


def test_chi_and_monotonic(tmp_path):
    params = {**DEALER, "method": "chi", "fine_bins": 30, "bins": 5, "monotonic": True}
    out = _run(["bank", "telco"], tmp_path, params=params)
    feature = Binning.from_dict(out["telco"].models["binning"]).features["tenure"]
    assert 2 <= feature.n_bins <= 5
    assert np.all(np.diff(feature.woe) < 0)  # tenure falls with risk: WOE decreases


def test_manual_cuts_are_private_and_used(tmp_path):
    cuts = {"gov": {"manual_cuts": {"capital": [-1.0, 0.0, 1.0]}},
            "bank": {"min_bin_rows": 20}}
    out = _run(["bank", "gov"], tmp_path, party_params=cuts)
    bins = out["gov"].report["bins"]["capital"]
    assert [b["edges"] for b in bins] == [[None, -1.0], [-1.0, 0.0], [0.0, 1.0], [1.0, None]]


def test_small_manual_bin_refused(tmp_path):
    top = float(np.sort(_tables()["gov"].column("capital").to_numpy())[-10])
    cuts = {"gov": {"manual_cuts": {"capital": [top]}}, "bank": {"min_bin_rows": 50}}
    with pytest.raises(BinningError, match=r"party gov, feature 'capital'.*minimum"):
        _run(["bank", "gov"], tmp_path, party_params=cuts)


def test_rebinning_limit(tmp_path):
    state = {"state_dir": str(tmp_path / "state")}
    bank = {"min_bin_rows": 20, "max_rebinnings": 1}
    _run(["bank", "gov"], tmp_path, party_params={"bank": bank}, options=state)
    _run(["bank", "gov"], tmp_path, party_params={"bank": bank}, options=state)  # same: free
    other = {"bank": bank, "gov": {"manual_cuts": {"capital": [0.0]}}}
    with pytest.raises(BinningError, match="max_rebinnings=1"):
        _run(["bank", "gov"], tmp_path, party_params=other, options=state)


def test_bad_label_names_party_step_column(tmp_path):
    tables = _tables()
    tables["bank"] = tables["bank"].set_column(1, "y", pa.array(LABEL * 2))
    with pytest.raises(BinningError, match=r"party bank, step bins, column 'y': .*0 or 1"):
        _run(["bank", "gov"], tmp_path, tables=tables)


def test_non_numeric_manual_column(tmp_path):
    cuts = {"gov": {"manual_cuts": {"kind": [1.0]}}, "bank": {"min_bin_rows": 20}}
    with pytest.raises(BinningError, match=r"party gov, step bins: column 'kind' .*not numeric"):
        _run(["bank", "gov"], tmp_path, party_params=cuts)


def test_fine_bins_quantile_equal_numpy():
    values = np.random.default_rng(2).normal(size=5000)
    fine = fine_bins(pa.table({"v": values}), ["v"], "quantile", 10, {}, [])
    expected = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
    assert np.allclose(fine.features[0].edges, expected)
    assert np.array_equal(fine.groups[:, 0], np.searchsorted(expected, values, side="right"))


def test_honest_majority_equals_dishonest(tmp_path):
    names = ["bank", "gov", "fin"]
    rep3 = _run(names, tmp_path / "rep3", params={"security": "honest-majority", "bins": 6,
                                                  "grouped_sum": "product"})
    semi = _run(names, tmp_path / "semi", params={**DEALER, "grouped_sum": "product"})
    for party in names:
        assert rep3[party].models["binning"] == semi[party].models["binning"]


def test_unknown_or_public_private_parameters_rejected(tmp_path):
    with pytest.raises(BinningError, match=r"unknown ml.binning parameter\(s\) \['colour'\]"):
        _run(["bank", "gov"], tmp_path, params={**DEALER, "colour": "red"})
    with pytest.raises(BinningError, match="manual_cuts are private"):
        _run(["bank", "gov"], tmp_path, params={**DEALER, "manual_cuts": {"capital": [0.0]}})


def test_reference_product_in_blocks_equals_one_call(tmp_path, monkeypatch):
    from meshmpc.ml import binning_protocol

    params = {**DEALER, "grouped_sum": "product"}
    whole = _run(["bank", "gov"], tmp_path / "whole", params=params)
    monkeypatch.setattr(binning_protocol, "REFERENCE_BLOCK_CELLS", 3 * N)  # ~1 feature a call
    blocks = _run(["bank", "gov"], tmp_path / "blocks", params=params)
    assert blocks["gov"].models["binning"] == whole["gov"].models["binning"]
    assert blocks["bank"].report["iv_all"] == whole["bank"].report["iv_all"]


def test_ot_triples_no_dealer(tmp_path):
    """The default correlations (OT-made triples, no dealer) give the same bins."""
    tables = {p: t.slice(0, 400) for p, t in _tables().items()}
    tables["gov"] = tables["gov"].select(["id", "capital"])
    ot = _run(["bank", "gov"], tmp_path / "ot", params={"bins": 4, "grouped_sum": "product"},
              tables=tables)
    dealer = _run(["bank", "gov"], tmp_path / "d", params={**DEALER, "bins": 4}, tables=tables)
    assert ot["gov"].models["binning"] == dealer["gov"].models["binning"]
    assert ot["gov"].report["iv"]["capital"] > 0.05


def test_snapshots_joined_as_of_the_observation_date(tmp_path):
    """A partner's snapshot value recorded after a row's observation date is never used:
    its later, label-revealing snapshot would otherwise give a huge IV."""
    import pyarrow.parquet as pq

    obs = pa.array(np.full(N, 19_800, np.int32), type=pa.date32())  # 2024-03-18
    tables = _tables()
    tables["bank"] = tables["bank"].append_column("obs", obs)
    early = RISK + np.random.default_rng(9).normal(size=N)
    snap = pa.table({"id": np.concatenate([IDS, IDS]),
                     "when": pa.array(np.r_[np.full(N, 19_700), np.full(N, 19_900)]
                                      .astype(np.int32), type=pa.date32()),
                     "score": np.concatenate([early, LABEL * 10.0])})
    pq.write_table(snap, tmp_path / "snap.parquet")
    parties = _parties(["bank", "gov"])
    parties["bank"] = PartyInput("bank", key="id", label="y", obs_date="obs")
    inputs = {p: {"align": StepOutput(tables={"aligned": tables[p]})} for p in parties}
    spec = {"data": str(tmp_path / "snap.parquet"), "date": "when", "columns": ["score"]}
    out = run_component(binning, parties, inputs, DEALER, tmp_path,
                        party_params={"bank": {"min_bin_rows": 20}, "gov": {"snapshots": spec}})
    iv = out["gov"].report["iv"]["score"]
    bins = Binning.from_dict(out["gov"].models["binning"]).features["score"]
    assert 0.05 < iv < 1.0 and bins.n_bins > 2  # the early snapshot, not the label copy


def test_float32_woe_table(tmp_path):
    out = _run(["bank", "gov"], tmp_path, params={**DEALER, "woe_dtype": "float32"})
    features = out["gov"].tables["features"]
    kind = features.schema.field("capital").type
    # compact: one uint8 bin index per cell and a float32 WOE table per feature
    assert kind == pa.dictionary(pa.uint8(), pa.float32())
    assert features.column("capital").nbytes < features.num_rows * 2
    model = Binning.from_dict(out["gov"].models["binning"])
    expected = model.transform(_tables()["gov"]).column("capital").to_numpy()
    assert np.allclose(features.column("capital").to_numpy(), expected, atol=1e-6)


def test_owner_frees_its_raw_columns_once_binned(tmp_path):
    """An owner handed its table (no other reference) drops it before the secure counts:
    at 10^6 x 500 the raw float32 columns are 2 GB an owner need not hold any longer."""
    import gc
    import weakref

    from meshmpc.jobs.api import StepContext
    from meshmpc.ml.backends import owner_product
    from meshmpc.ml.binning_protocol import secure_binning
    from meshmpc.net.memory import run_parties

    alive: dict[str, bool] = {}
    refs: dict[str, weakref.ref] = {}

    async def watching_factory(ctx, params, bank):
        gc.collect()
        alive[ctx.party] = refs[ctx.party]() is not None
        return await owner_product(ctx, params, bank)

    async def one(ctx):
        step = StepContext(ctx=ctx.scope("bins"), job_name="t", step_id="bins",
                           party=ctx.party, parties=_parties(["bank", "gov"]),
                           step_parties=["bank", "gov"],
                           party_params={"min_bin_rows": 20} if ctx.party == "bank" else {},
                           workdir=tmp_path / ctx.party, options={"state_dir": str(tmp_path)})
        box = [_tables()[ctx.party]]
        refs[ctx.party] = weakref.ref(box[0])
        out = await secure_binning(step, box.pop(), {**DEALER, "grouped_sum": "product"},
                                   factory=watching_factory)
        return out.features.num_rows

    rows = run_parties(["bank", "gov"], one)
    assert rows == {"bank": N, "gov": N}
    assert alive == {"bank": True, "gov": False}  # the bank keeps its label and row keys
