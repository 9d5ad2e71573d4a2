"""Wider reference data (--features) and observation dates with a planted leak (--obs-date)."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from meshmpc_credit import datagen
from meshmpc_credit.datagen_wide import LEAK, parse_features
from meshmpc_credit.plainmodel import auc, fit_logistic, predict

from meshmpc.data import validate
from meshmpc.errors import DataError
from meshmpc.jobs.api import PartyInput, StepOutput
from meshmpc.ml.components_binning import binning
from meshmpc.ml.inprocess import run_component

WIDE = {"bank": 6, "gov": 150, "fin": 70, "telco": 29}


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    out = tmp_path_factory.mktemp("wide")
    return datagen.generate(out, 5000, seed=5, months=0, features=WIDE, obs_date=True)


def test_feature_counts_labels_last_and_schemas(wide):
    for party, count in WIDE.items():
        table = pq.read_table(wide[party])
        extra = {"bank": 3, "fin": 1}.get(party, 0)  # labels + date; leak's recorded-at
        assert table.num_columns == 1 + count + extra + (party == "fin"), party
        assert not validate(wide[f"{party}_schema"], wide[party]).errors
    bank = pq.read_table(wide["bank"])
    assert bank.column_names[-3:] == ["application_date", "default_12m", "days_overdue"]
    assert "gov_ind_0150" in pq.read_schema(wide["gov"]).names


def test_extra_columns_carry_signal_and_are_deterministic(wide, tmp_path):
    bank = pq.read_table(wide["bank"])
    gov = pq.read_table(wide["gov"])
    order = pc.index_in(bank.column("credit_code"), value_set=gov.column("credit_code"))
    held = order.is_valid()
    y = bank.column("default_12m").filter(held).to_numpy()
    rows = order.filter(held)
    extras = [c for c in gov.column_names if c.startswith("gov_ind_")]
    assert len(extras) == 30
    aucs = []
    for name in extras:
        x = gov.column(name).take(rows).to_numpy(zero_copy_only=False).astype(float)
        ok = ~np.isnan(x)
        aucs.append(abs(auc(y[ok], x[ok]) - 0.5))
    assert max(aucs) > 0.1 and min(aucs) < 0.05  # some strong, some weak, like real data
    again = datagen.generate(tmp_path, 5000, seed=5, months=0, features=WIDE, obs_date=True)
    assert pq.read_table(again["gov"]).equals(gov)


def test_parse_features():
    assert parse_features("gov=500,fin=300") == {"bank": 8, "gov": 500, "fin": 300, "telco": 29}
    with pytest.raises(DataError, match="unknown party"):
        parse_features("tax=3")


def test_leak_recorded_after_every_observation_date(wide):
    bank = pq.read_table(wide["bank"])
    fin = pq.read_table(wide["fin"])
    joined = bank.join(fin, "credit_code", join_type="inner")
    obs = joined.column("application_date").cast(pa.int32()).to_numpy()
    recorded = joined.column(f"{LEAK}_recorded_at").cast(pa.int32()).to_numpy()
    assert len(obs) > 3000 and np.all(recorded > obs)


def _aligned(files):
    bank = pq.read_table(files["bank"])
    fin = pq.read_table(files["fin"])
    at = pc.index_in(bank.column("credit_code"), value_set=fin.column("credit_code"))
    return {"bank": bank.filter(at.is_valid()), "fin": fin.take(at.filter(at.is_valid()))}


def _woe_auc(out, label):
    """Held-out AUC of a plaintext LR on the pooled WOE features (even rows train)."""
    x = np.column_stack([out[p].tables["features"].column(c).to_numpy()
                         for p in ("bank", "fin") for c in out[p].report["iv"]])
    train, test = slice(0, None, 2), slice(1, None, 2)
    weights = fit_logistic(x[train], label[train])
    return auc(label[test], predict(weights, x[test]))


def test_job_excludes_the_leak_which_would_inflate_auc(wide, tmp_path):
    tables = _aligned(wide)
    label = tables["bank"].column("default_12m").to_numpy().astype(float)
    inputs = {p: {"align": StepOutput(tables={"aligned": t})} for p, t in tables.items()}
    fin_unused = tables["fin"].column_names[13:-2]  # keep 12 features and the leak (speed)
    runs = {}
    for obs in ("application_date", None):
        parties = {"bank": PartyInput("bank", key="credit_code", label="default_12m",
                                      obs_date=obs),
                   "fin": PartyInput("fin", key="credit_code")}
        runs[obs] = run_component(binning, parties, inputs, {"triples": "dealer"},
                                  tmp_path / str(obs),
                                  party_params={"bank": {"exclude": ["days_overdue"],
                                                         "min_bin_rows": 50},
                                                "fin": {"exclude": fin_unused}})
    honest, leaky = runs["application_date"], runs[None]
    assert honest["fin"].report["excluded_asof"] == [LEAK]
    assert LEAK not in honest["fin"].tables["features"].column_names
    assert "application_date" in honest["bank"].tables["features"].column_names
    assert leaky["fin"].report["iv"][LEAK] > 1.0
    assert _woe_auc(leaky, label) > _woe_auc(honest, label) + 0.1
