"""The reference dataset: shape, keys, overlap, labels, snapshots, risk lists, determinism."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from meshmpc_credit import datagen

from meshmpc.data import load_table, validate
from meshmpc.data.uscc import valid_mask

ROWS = 3000
FEATURES = {"bank": 8, "gov": 120, "fin": 64, "telco": 29}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("refdata")
    return datagen.generate(out, ROWS, seed=11)


def _table(files, name):
    return pq.read_table(files[name])


def test_feature_counts_and_key_first(data):
    for party, count in FEATURES.items():
        table = _table(data, party)
        assert table.column_names[0] == "credit_code"
        labels = 2 if party == "bank" else 0
        assert table.num_columns == 1 + count + labels and table.num_rows == ROWS
    assert _table(data, "bank").column_names[-2:] == ["default_12m", "days_overdue"]


def test_every_file_passes_its_own_schema(data):
    for name, path in data.items():
        if name.endswith("_schema") or name == "manifest":
            continue
        report = validate(data[f"{name}_schema"], path)
        assert report.rows > 0 and not report.errors


def test_keys_are_valid_and_unique_and_outsiders_are_distinct(data):
    keys = {}
    for party in FEATURES:
        column = _table(data, party).column("credit_code")
        assert valid_mask(column).all()
        keys[party] = set(column.to_pylist())
        assert len(keys[party]) == ROWS
    outsiders = {p: keys[p] - keys["bank"] for p in ("gov", "fin", "telco")}
    assert not outsiders["gov"] & outsiders["fin"] and not outsiders["fin"] & outsiders["telco"]


def test_overlap_fractions_are_exact(data):
    bank = set(_table(data, "bank").column("credit_code").to_pylist())
    manifest = json.loads(data["manifest"].read_text())
    for party, share in datagen.DEFAULT_OVERLAP.items():
        shared = bank & set(_table(data, party).column("credit_code").to_pylist())
        assert len(shared) == round(share * ROWS) == manifest["shared_with_bank"][party]


def test_overlap_is_configurable(tmp_path):
    files = datagen.generate(tmp_path, 400, seed=1, overlap=0.25, months=0)
    bank = set(load_table(files["bank"]).column("credit_code").to_pylist())
    for party in ("gov", "fin", "telco"):
        assert len(bank & set(load_table(files[party]).column("credit_code").to_pylist())) == 100
    assert "bank_monthly" not in files
    with pytest.raises(ValueError, match="between 0 and 1"):
        datagen.generate(tmp_path, 10, seed=1, overlap=1.5)


def test_labels_are_consistent_and_plausible(data):
    bank = _table(data, "bank")
    default = bank.column("default_12m").to_numpy()
    days = bank.column("days_overdue").to_numpy()
    assert np.array_equal(default == 1, days >= 90)
    assert 0.05 < default.mean() < 0.15
    assert 0.02 < ((days > 0) & (days < 90)).mean() < 0.3


def test_missing_values_and_cross_party_correlation(data):
    gov = _table(data, "gov")
    rates = [gov.column(c).null_count / ROWS for c in gov.column_names]
    assert 0.01 < np.mean(rates) < 0.15 and max(rates) < 0.5
    joined = gov.join(_table(data, "telco"), "credit_code", join_type="inner")
    age = joined.column("registration_age_years").to_numpy()
    tenure = joined.column("tenure_months").to_numpy()
    assert np.corrcoef(age, tenure)[0, 1] > 0.5


def test_default_signal_is_spread_over_the_partners(data):
    bank = _table(data, "bank").select(["credit_code", "default_12m"])
    for party, column in (("gov", "enforcement_count"), ("fin", "applications_90d"),
                          ("telco", "collection_calls_6m")):
        joined = bank.join(_table(data, party), "credit_code", join_type="inner")
        x = joined.column(column).to_numpy().astype(float)
        y = joined.column("default_12m").to_numpy()
        assert x[y == 1].mean() > 1.3 * x[y == 0].mean(), (party, column)


def test_monthly_snapshots_match_labels_and_warn_early(data):
    monthly = _table(data, "bank_monthly")
    assert monthly.num_rows == ROWS * datagen.MONTHS
    worst = monthly.group_by("credit_code").aggregate([("days_past_due", "max")])
    bank = _table(data, "bank").join(worst, "credit_code")
    assert np.array_equal(bank.column("days_overdue").to_numpy(),
                          bank.column("days_past_due_max").to_numpy())
    first_late = monthly.filter(pc.greater(monthly.column("days_past_due"), 0)).group_by(
        "credit_code").aggregate([("month", "min")])
    fin = _table(data, "fin_monthly").join(first_late, "credit_code")
    month = fin.column("month").to_numpy()
    onset = fin.column("month_min").to_numpy()
    overdue = fin.column("overdue_count").to_numpy()
    assert overdue[month == onset - 1].mean() > 5 * overdue[month < onset - 4].mean()


def test_risk_lists_belong_to_the_partner_and_flag_defaulters(data):
    bank = _table(data, "bank")
    defaulters = set(bank.filter(pc.equal(bank.column("default_12m"), 1))
                     .column("credit_code").to_pylist())
    rate = len(defaulters) / ROWS
    for party in ("gov", "fin", "telco"):
        listed = set(_table(data, f"{party}_risklist").column("credit_code").to_pylist())
        held = set(_table(data, party).column("credit_code").to_pylist())
        assert listed and listed <= held
        bank_listed = listed & set(bank.column("credit_code").to_pylist())
        assert len(bank_listed & defaulters) / max(len(bank_listed), 1) > 2 * rate, party


def test_deterministic_by_seed(tmp_path):
    one = datagen.generate(tmp_path / "a", 300, seed=5, months=2)
    two = datagen.generate(tmp_path / "b", 300, seed=5, months=2)
    other = datagen.generate(tmp_path / "c", 300, seed=6, months=2)
    for name in ("bank", "gov", "fin", "telco", "gov_risklist", "telco_monthly"):
        assert load_table(one[name]).equals(load_table(two[name])), name
        assert one[f"{name}_schema"].read_text() == two[f"{name}_schema"].read_text()
    assert not load_table(one["gov"]).equals(load_table(other["gov"]))


def test_row_groups_stream_and_csv_matches_parquet(tmp_path, monkeypatch):
    monkeypatch.setattr(datagen, "ROW_GROUP", 500)
    parquet = datagen.generate(tmp_path / "p", 1700, seed=2, months=0)
    csv = datagen.generate(tmp_path / "c", 1700, seed=2, fmt="csv", months=0)
    assert pq.ParquetFile(parquet["gov"]).num_row_groups == 4
    bank = set(load_table(parquet["bank"]).column("credit_code").to_pylist())
    shared = bank & set(load_table(parquet["fin"]).column("credit_code").to_pylist())
    assert len(shared) == sum(round(0.7 * n) for n in (500, 500, 500, 200))
    from_csv = load_table(csv["telco"], column_types={"credit_code": pa.string()})
    assert from_csv.column("credit_code").equals(load_table(parquet["telco"]).column("credit_code"))
    validate(csv["telco_schema"], csv["telco"])


def test_cli_writes_the_files(tmp_path, capsys):
    from meshmpc_credit.cli import main

    assert main(["datagen", "--rows", "100", "--seed", "7", "--out", str(tmp_path),
                 "--format", "csv", "--months", "1"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"bank.csv", "gov.csv", "fin.csv", "telco.csv", "bank.schema.toml"} <= names
    assert "100 rows per party" in capsys.readouterr().out


def test_per_partner_overlap_from_the_command_line(tmp_path):
    from meshmpc_credit.cli import main

    assert datagen.parse_overlap("0.5") == 0.5
    assert datagen.parse_overlap("gov=0.2, fin=1") == {"gov": 0.2, "fin": 1.0}
    assert main(["datagen", "--rows", "200", "--out", str(tmp_path), "--months", "0",
                 "--overlap", "gov=0.2,fin=1"]) == 0
    shared = json.loads((tmp_path / "datagen.json").read_text())["shared_with_bank"]
    assert shared == {"gov": 40, "fin": 200, "telco": 160}
    with pytest.raises(SystemExit):
        main(["datagen", "--overlap", "gov:0.2"])
    assert main(["datagen", "--rows", "10", "--out", str(tmp_path), "--overlap", "bank=0.5"]) == 2
