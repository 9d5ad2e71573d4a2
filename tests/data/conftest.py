"""Shared fixtures: a small schema and writers for crafted (good and bad) data files."""

from pathlib import Path

import pytest

SCHEMA = """
[dataset]
name = "loans"
party = "bank"
key = ["credit_code"]

[[columns]]
name = "credit_code"
type = "string"
format = "uscc"
nullable = false
sensitivity = "confidential"

[[columns]]
name = "amount"
type = "float"
unit = "CNY"
min = 0
max = 1000
max_missing = 0.3

[[columns]]
name = "term"
type = "int"
unit = "month"
min = 1
max = 36

[[columns]]
name = "grade"
type = "category"
categories = ["A", "B", "C"]

[[columns]]
name = "opened"
type = "date"

[[columns]]
name = "secured"
type = "bool"
"""

CODES = ["914403001922038216", "91440300708461136T", "91330100716105852F", "91110000802100433B"]
GOOD_CSV = (
    "credit_code,amount,term,grade,opened,secured\n"
    f"{CODES[0]},10.5,12,A,2024-01-02,true\n"
    f"{CODES[1]},200,24,B,2024-02-29,false\n"
    f"{CODES[2]},,6,C,2023-12-31,1\n"
    f"{CODES[3]},999,36,A,,0\n"
)


@pytest.fixture
def codes() -> list[str]:
    return list(CODES)


@pytest.fixture
def good_csv() -> str:
    return GOOD_CSV


@pytest.fixture
def schema_path(tmp_path: Path) -> Path:
    path = tmp_path / "loans.schema.toml"
    path.write_text(SCHEMA, encoding="utf-8")
    return path


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return _write
