"""Long all-digit codes (18-digit credit codes, bank card numbers) in the data tools.

Found walking docs/deploy.md step 5 with a file of all-digit credit codes:
``data infer`` crashed (``Integer value ... not in range`` casting to float),
and so did ``data check`` on an int column of such values (the summary, then
the histogram). Codes longer than 15 digits are identifiers: inferred as
text; an int column that holds them anyway is checked without a crash.
"""

from __future__ import annotations

from pathlib import Path

from meshmpc.data import check
from meshmpc.data.infer import infer_schema

CODES = [f"91310000{i:010d}" for i in range(40)]


def _csv(path: Path) -> Path:
    rows = [f"{c},62220212{i:08d},{i * 7}" for i, c in enumerate(CODES)]
    path.write_text("credit_code,card,amount\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_infer_keeps_long_digit_codes_as_text(tmp_path: Path) -> None:
    schema = infer_schema(_csv(tmp_path / "firms.csv"))
    types = {c.name: c.type for c in schema.columns}
    assert types == {"credit_code": "string", "card": "string", "amount": "int"}
    assert tuple(schema.key) == ("credit_code",)


def test_check_summarises_an_int_column_of_18_digit_values(tmp_path: Path) -> None:
    data = _csv(tmp_path / "firms.csv")
    schema = tmp_path / "firms.schema.toml"
    schema.write_text('[dataset]\nname = "firms"\nkey = ["credit_code"]\n\n'
                      '[[columns]]\nname = "credit_code"\ntype = "int"\n\n'
                      '[[columns]]\nname = "card"\ntype = "string"\n\n'
                      '[[columns]]\nname = "amount"\ntype = "int"\n', encoding="utf-8")
    report = check(schema, data)
    assert report.rows == 40 and not report.issues
    summary = {c.name: c for c in report.columns}
    assert summary["credit_code"].invalid == 0
    assert summary["amount"].histogram is not None
