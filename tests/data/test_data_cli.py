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
