"""Column classification (JR/T 0171 / 0197) honoured by schemas, reports, errors, logs."""

import logging
import tomllib

import pytest

from meshmpc.cli import describe_error
from meshmpc.data import check, load_schema
from meshmpc.data.errors import DataReadError, SchemaFileError
from meshmpc.data.protect import install_log_masking
from meshmpc.data.schema import dump_schema, schema_from_dict

SCHEMA = """
[dataset]
name = "applicants"
key = ["credit_code"]

[[columns]]
name = "credit_code"
type = "string"
format = "uscc"
nullable = false

[[columns]]
name = "legal_rep_name"
type = "category"
categories = ["张三", "李四"]
classification = "C3"

[[columns]]
name = "contact_phone"
type = "string"
classification = "L4"

[[columns]]
name = "branch"
type = "category"
categories = ["north", "south"]
classification = "C1"
"""

BAD_CODE = "91110108MA01ABCD3Y"  # the shape of a credit code, wrong check character
GOOD = ["914403001922038216", "91440300708461136T", "91330100716105852F"]
ROWS = [
    f"{GOOD[0]},张三,13812345678,north",
    f"{BAD_CODE},王五六,13987654321,east",
    f"{GOOD[1]},李四,13700001111,south",
    f"{GOOD[2]},张三,13600002222,north",
]


@pytest.fixture
def files(tmp_path):
    schema = tmp_path / "applicants.schema.toml"
    schema.write_text(SCHEMA, encoding="utf-8")
    data = tmp_path / "applicants.csv"
    data.write_text("credit_code,legal_rep_name,contact_phone,branch\n" + "\n".join(ROWS) + "\n",
                    encoding="utf-8")
    return schema, data


def test_schema_reads_and_round_trips_the_classification(files):
    schema = load_schema(files[0])
    levels = {c.name: c.level for c in schema.columns}
    assert levels == {"credit_code": "C2", "legal_rep_name": "C3", "contact_phone": "L4",
                      "branch": "C1"}
    assert [c.masked for c in schema.columns] == [True, True, True, False]
    again = schema_from_dict(tomllib.loads(dump_schema(schema)))
    assert [c.classification for c in again.columns] == [None, "C3", "L4", "C1"]


def test_an_unknown_level_names_the_column(files):
    text = files[0].read_text(encoding="utf-8").replace('"L4"', '"L9"')
    files[0].write_text(text, encoding="utf-8")
    with pytest.raises(SchemaFileError, match=r"column 'contact_phone': classification 'L9'"):
        load_schema(files[0])


def test_quality_report_masks_sensitive_values(files):
    report = check(*files)
    kinds = {(i.column, i.kind): i for i in report.issues}
    assert kinds[("credit_code", "invalid_key")].values == ["91110108****CD3Y"]
    assert kinds[("legal_rep_name", "category")].values == ["王**"]
    assert kinds[("branch", "category")].values == ["east"]  # C1: shown as it is
    phones = next(c for c in report.columns if c.name == "contact_phone")
    names = next(c for c in report.columns if c.name == "legal_rep_name")
    assert phones.top == [] and names.top == [] and names.classification == "C3"
    for page in (report.to_text(), report.to_html()):
        for raw in [BAD_CODE, *GOOD, "13812345678", "13987654321", "王五六", "张三", "李四"]:
            assert raw not in page, raw
        assert "C3" in page


def test_cli_errors_and_any_logger_are_masked(caplog):
    code, text = describe_error(DataReadError("in.csv", f"bad row: {GOOD[0]},13812345678"))
    assert code == 2 and GOOD[0] not in text and "91440300****8216" in text
    assert "138****5678" in text
    install_log_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("uvicorn.error").info("lookup %s", "13812345678")
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text
