"""Quality checks and validation on crafted good and bad files."""

import sqlite3

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshmpc.data import (
    DataReadError,
    SchemaViolation,
    check,
    load_validated,
    validate,
    validate_inputs,
)
from meshmpc.errors import DataError


def _issue(report, kind, column=None):
    found = [i for i in report.issues if i.kind == kind and (column is None or i.column == column)]
    assert found, f"no {kind} issue for {column}: {report.issues}"
    return found[0]


def test_good_csv_passes_with_exact_summaries(schema_path, write, good_csv):
    report = validate(schema_path, write("good.csv", good_csv))
    assert report.ok and report.rows == 4 and not report.errors
    amount = next(c for c in report.columns if c.name == "amount")
    assert amount.missing == 1 and amount.present == 3
    assert amount.stats["mean"] == pytest.approx((10.5 + 200 + 999) / 3)
    assert (amount.stats["min"], amount.stats["max"]) == (10.5, 999)
    grade = next(c for c in report.columns if c.name == "grade")
    assert grade.top[0] == ("A", 2)


def test_wrong_types_are_reported_with_rows(schema_path, write, good_csv):
    text = good_csv.replace("10.5,12", "ten,12").replace("200,24", "200,24.5").replace(
        "2023-12-31", "2023-02-30").replace(",0\n", ",maybe\n")
    report = check(schema_path, write("types.csv", text))
    assert _issue(report, "type_error", "amount").rows == [1]
    assert _issue(report, "type_error", "term").rows == [2]
    assert _issue(report, "type_error", "opened").rows == [3]
    assert _issue(report, "type_error", "secured").rows == [4]
    assert not report.ok


def test_range_category_and_null_violations(schema_path, write, good_csv, codes):
    text = good_csv.replace("999,36,A", "1999,37,Z").replace(f"{codes[1]},", ",")
    report = check(schema_path, write("range.csv", text))
    assert _issue(report, "out_of_range", "amount").rows == [4]
    assert _issue(report, "out_of_range", "term").rows == [4]
    assert _issue(report, "category", "grade").rows == [4]
    assert _issue(report, "null", "credit_code").rows == [2]


def test_invalid_and_duplicate_keys_across_batches(schema_path, write, good_csv, codes):
    rows = [good_csv.splitlines()[0]] + [
        f"{codes[i % 4]},1,1,A,2024-01-01,1" for i in range(40)]
    rows[7] = rows[7].replace(codes[2], codes[2][:-1] + "0")
    report = check(schema_path, write("dupes.csv", "\n".join(rows) + "\n"), batch_rows=8)
    assert _issue(report, "invalid_key").rows == [7]
    duplicate = _issue(report, "duplicate_key")
    assert duplicate.count == 39 and 7 not in duplicate.rows and duplicate.rows[:3] == [1, 2, 3]


def test_missing_and_extra_columns(schema_path, write, good_csv):
    text = "\n".join(",".join(p for j, p in enumerate(line.split(",")) if j != 2) + ",x"
                     for line in good_csv.splitlines()) + "\n"
    report = check(schema_path, write("cols.csv", text))
    assert _issue(report, "missing_column", "term").severity == "error"
    assert _issue(report, "extra_column").severity == "warning"


def test_empty_files(schema_path, write, good_csv):
    with pytest.raises(DataReadError, match="empty"):
        check(schema_path, write("none.csv", ""))
    report = check(schema_path, write("header.csv", good_csv.splitlines()[0] + "\n"))
    assert _issue(report, "empty").severity == "error" and report.rows == 0


def test_wrong_text_encoding(schema_path, write, tmp_path, good_csv):
    raw = good_csv.replace("A,2024-01-02", "甲,2024-01-02").encode("gbk")
    report = check(schema_path, write("gbk.csv", raw))
    assert _issue(report, "encoding", "grade").rows == [1]
    declared = tmp_path / "gbk.schema.toml"
    declared.write_text(schema_path.read_text().replace(
        'party = "bank"', 'party = "bank"\nencoding = "gbk"').replace('"C"]', '"C", "甲"]'),
        encoding="utf-8")
    assert check(declared, tmp_path / "gbk.csv").ok


def test_validate_raises_naming_file_column_and_rows(schema_path, write, good_csv):
    path = write("bad.csv", good_csv.replace("200,24", "abc,24"))
    with pytest.raises(SchemaViolation) as info:
        validate(schema_path, path)
    message = str(info.value)
    assert "bad.csv" in message and "'amount'" in message and "row 2" in message
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)
    assert info.value.report.rows == 4


def test_parquet_with_wrong_types(schema_path, tmp_path, codes):
    table = pa.table({
        "credit_code": codes, "amount": ["1", "2", "x", None], "term": [1.0, 2.5, 3.0, None],
        "grade": ["A", "B", "C", "A"], "opened": ["2024-01-01"] * 4, "secured": [True] * 4,
    })
    pq.write_table(table, tmp_path / "t.parquet")
    report = check(schema_path, tmp_path / "t.parquet")
    assert _issue(report, "type_error", "amount").rows == [3]
    assert _issue(report, "type_error", "term").rows == [2]


def test_sqlite_source_is_checked(schema_path, tmp_path, codes):
    db = tmp_path / "bank.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE loans (credit_code TEXT, amount REAL, term INTEGER, "
                     "grade TEXT, opened TEXT, secured INTEGER)")
        conn.executemany("INSERT INTO loans VALUES (?,?,?,?,?,?)", [
            (codes[0], 1.0, 12, "A", "2024-01-01", 1), (codes[1], -5.0, 12, "B", None, 0)])
    report = check(schema_path, f"sqlite:///{db}?table=loans")
    assert _issue(report, "out_of_range", "amount").rows == [2]


def test_load_validated_returns_schema_types(schema_path, write, good_csv):
    table, report = load_validated(schema_path, write("good.csv", good_csv))
    assert report.ok and table.schema.field("term").type == pa.int64()
    assert table.column("opened").type == pa.date32()
    assert table.column("secured").to_pylist() == [True, False, True, False]


def test_validate_inputs_names_the_party(schema_path, write, good_csv):
    good, bad = write("good.csv", good_csv), write("bad.csv", good_csv.replace(",12,", ",99,"))
    with pytest.raises(SchemaViolation, match="party gov: .*bad.csv.*'term'.*row 1"):
        validate_inputs({"bank": (schema_path, good), "gov": (schema_path, bad)})
    assert validate_inputs({"bank": (schema_path, good)})["bank"].ok


def test_reports_render_text_and_html(schema_path, write, tmp_path, good_csv):
    report = check(schema_path, write("r.csv", good_csv.replace("200,24,B", "<b>,24,<b>")))
    text_path, html_path = report.write(tmp_path / "out")
    assert "FAIL" in text_path.read_text() and "row 2" in text_path.read_text()
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "value is not a valid float" in page and "not among the 3 categories" in page
    assert "&lt;b&gt;" in page and "<b>" not in page  # the data's text is escaped


def test_large_file_statistics_match_numpy(tmp_path):
    rng = np.random.default_rng(5)
    values = rng.lognormal(size=200_000)
    pq.write_table(pa.table({"v": values}), tmp_path / "v.parquet", row_group_size=30_000)
    schema = tmp_path / "v.schema.toml"
    schema.write_text("[[columns]]\nname = 'v'\ntype = 'float'\n", encoding="utf-8")
    summary = check(schema, tmp_path / "v.parquet").columns[0]
    assert summary.stats["mean"] == pytest.approx(values.mean())
    assert summary.stats["std"] == pytest.approx(values.std(), rel=1e-6)
    assert summary.stats["p50"] == pytest.approx(np.median(values), rel=0.05)


def test_std_is_stable_for_large_offsets(tmp_path):
    values = 1e9 + np.arange(100_000) % 7 * 0.001
    pq.write_table(pa.table({"v": values}), tmp_path / "v.parquet", row_group_size=7_000)
    schema = tmp_path / "v.schema.toml"
    schema.write_text("[[columns]]\nname = 'v'\ntype = 'float'\n", encoding="utf-8")
    summary = check(schema, tmp_path / "v.parquet", batch_rows=3_000).columns[0]
    assert summary.stats["std"] == pytest.approx(values.std(), rel=1e-6)
