"""Operator-reported data-tool bugs (issue #11): each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshmpc.cli import main
from meshmpc.data import SchemaFileError, check, load_schema
from meshmpc.data.infer import infer_schema
from meshmpc.data.report import readable


def test_header_only_csv_is_empty_not_missing_columns(schema_path, write) -> None:
    data = write("loans.csv", "credit_code,amount,term,grade,opened,secured\n")
    report = check(schema_path, data)
    kinds = [issue.kind for issue in report.issues]
    assert "missing_column" not in kinds and kinds == ["empty"]


def test_infer_on_header_only_csv_writes_string_columns_with_a_warning(
        write, capsys: pytest.CaptureFixture[str]) -> None:
    data = write("firms.csv", "credit_code,name,phone\n")
    schema = infer_schema(data)
    assert schema.names == ["credit_code", "name", "phone"]
    assert all(c.type == "string" and c.nullable for c in schema.columns)
    assert "no rows" in capsys.readouterr().err


def test_infer_keeps_leading_zero_codes_as_strings(write) -> None:
    data = write("firms.csv", "phone,zip,amount,count,flag\n075510025723,00012,1.5,3,true\n"
                              "13800138000,10001,20,4,false\n")
    schema = infer_schema(data)
    types = {c.name: c.type for c in schema.columns}
    assert types == {"phone": "string", "zip": "string", "amount": "float", "count": "int",
                     "flag": "bool"}


def test_column_table_counts_every_invalid_value_the_issues_list(
        schema_path, write, good_csv) -> None:
    bad = good_csv.replace("914403001922038216", "914403001922038217")  # bad check digit
    bad = bad.replace(",12,", ",120,")  # term out of range
    report = check(schema_path, write("bad.csv", bad))
    by_column = {c.name: c for c in report.columns}
    issues = {(i.column, i.kind): i for i in report.issues}
    assert issues[("credit_code", "invalid_key")].count == by_column["credit_code"].invalid == 1
    assert issues[("term", "out_of_range")].count == by_column["term"].invalid == 1
    assert issues[("term", "out_of_range")].values == ["120"]


@pytest.mark.parametrize(("text", "key", "hint"), [
    ('[[columns]]\nname = "a"\ntype = "int"\nnulable = false\n', "nulable", "nullable"),
    ('[dataset]\nnmae = "x"\n[[columns]]\nname = "a"\ntype = "int"\n', "nmae", "name"),
    ('[datset]\n[[columns]]\nname = "a"\ntype = "int"\n', "datset", "dataset"),
])
def test_unknown_schema_keys_are_errors_with_a_suggestion(
        tmp_path: Path, text: str, key: str, hint: str) -> None:
    path = tmp_path / "s.schema.toml"
    path.write_text(text)
    with pytest.raises(SchemaFileError, match=f"unknown key '{key}'.*did you mean '{hint}'"):
        load_schema(path)


def test_html_report_shows_values_counts_descriptions_and_charts(
        schema_path, write, good_csv, tmp_path: Path) -> None:
    schema_path.write_text(schema_path.read_text().replace(
        'unit = "CNY"', 'unit = "CNY"\ndescription = "loan amount granted"'))
    bad = good_csv.replace(",12,", ",120,")
    report = check(schema_path, write("bad.csv", bad))
    page = report.to_html()
    assert "1: 120" in page and "all 1" in page
    assert "loan amount granted" in page and "Checked 20" in page
    assert page.count("<svg") >= 2  # a histogram for amount/term, bars for grade...
    assert "b'" not in page
    assert readable(2532310.0) == "2,532,310" and readable(1234.5678) == "1,234.57"


def test_gbk_file_reads_with_encoding_option(tmp_path: Path, capsys) -> None:
    path = tmp_path / "gov.csv"
    path.write_bytes("code;name\nc1;深圳市\n".encode("gbk"))
    assert main(["data", "infer", "--input", str(path), "--encoding", "gbk",
                 "--delimiter", ";"]) == 0
    out = capsys.readouterr().out
    assert 'name = "code"' in out and 'name = "name"' in out and 'encoding = "gbk"' in out


def test_duplicate_keys_use_the_shared_key_rule(schema_path, write, good_csv, codes) -> None:
    full_width = codes[0].translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    text = good_csv + f" {full_width} ,5,6,B,2024-03-01,true\n"
    report = check(schema_path, write("dup.csv", text))
    [dup] = [i for i in report.issues if i.kind == "duplicate_key"]
    assert dup.rows == [1, 5]


def test_check_shows_a_progress_bar_with_rate(schema_path, write, good_csv, capsys) -> None:
    check(schema_path, write("loans.csv", good_csv), progress=True)
    err = capsys.readouterr().err
    assert "checking" in err and "rows" in err and "/s" in err


def test_empty_parquet_and_sql_tables_keep_their_columns(schema_path, tmp_path: Path) -> None:
    import sqlite3

    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["credit_code", "amount", "term", "grade", "opened", "secured"]
    pq.write_table(pa.table({n: pa.array([], pa.string()) for n in names}),
                   tmp_path / "loans.parquet")
    assert [i.kind for i in check(schema_path, tmp_path / "loans.parquet").issues] == ["empty"]
    with sqlite3.connect(tmp_path / "loans.db") as conn:
        conn.execute(f"CREATE TABLE t ({', '.join(names)})")
    url = f"sqlite:///{tmp_path}/loans.db?table=t"
    assert [i.kind for i in check(schema_path, url).issues] == ["empty"]
