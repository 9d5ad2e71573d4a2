"""`meshmpc data check`: exit codes and the text/HTML reports it writes."""

from meshmpc.cli import main


def test_check_good_file(schema_path, write, good_csv, tmp_path, capsys):
    data = write("loans.csv", good_csv)
    status = main(["data", "check", "--schema", str(schema_path), "--input", str(data),
                   "--report-dir", str(tmp_path / "reports")])
    assert status == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert (tmp_path / "reports" / "loans.quality.txt").is_file()
    assert (tmp_path / "reports" / "loans.quality.html").read_text().startswith("<!DOCTYPE")


def test_check_bad_file_exits_1_and_lists_rows(schema_path, write, good_csv, capsys):
    data = write("bad.csv", good_csv.replace(",12,", ",120,"))
    status = main(["data", "check", "--schema", str(schema_path), "--input", str(data)])
    out = capsys.readouterr().out
    assert status == 1 and "verdict: FAIL" in out and "out_of_range" in out and "row 1" in out
    assert (data.parent / "bad.quality.html").is_file()


def test_unreadable_input_exits_2_naming_the_file(schema_path, tmp_path, capsys):
    status = main(["data", "check", "--schema", str(schema_path),
                   "--input", str(tmp_path / "absent.csv")])
    assert status == 2 and "absent.csv" in capsys.readouterr().err


def test_infer_drafts_a_schema_the_data_passes(tmp_path, good_csv, capsys):
    import numpy as np

    from meshmpc.data import uscc

    codes = uscc.build(np.full(20, ord("9"), np.uint8), np.full(20, ord("1"), np.uint8),
                       np.full(20, 110105), np.arange(20)).to_pylist()
    body = [line.split(",", 1)[1] for line in good_csv.splitlines()[1:]] * 5
    data = tmp_path / "loans.csv"
    data.write_text(good_csv.splitlines()[0] + "\n" + "".join(
        f"{code},{rest}\n" for code, rest in zip(codes, body, strict=True)), encoding="utf-8")
    out = tmp_path / "drafted.schema.toml"
    assert main(["data", "infer", "--input", str(data), "--out", str(out), "--ranges"]) == 0
    from meshmpc.data import load_schema, validate

    schema = load_schema(out)
    assert schema.column("credit_code").format == "uscc"
    assert schema.key == ("credit_code",)
    assert schema.column("term").type == "int" and schema.column("term").max == 36
    assert schema.column("amount").nullable and not schema.column("term").nullable
    assert schema.column("grade").type == "category"
    assert validate(out, data).ok
    assert main(["data", "infer", "--input", str(data)]) == 0
    assert "[[columns]]" in capsys.readouterr().out
