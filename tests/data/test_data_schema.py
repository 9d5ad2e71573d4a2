"""Schema files: parsing, checks of the schema itself, and the TOML round trip."""

import pyarrow as pa
import pytest

from meshmpc.data import SchemaFileError, dump_schema, load_schema, write_schema
from meshmpc.errors import DataError


def test_load_schema_reads_every_field(schema_path):
    schema = load_schema(schema_path)
    assert schema.name == "loans" and schema.party == "bank" and schema.key == ("credit_code",)
    amount = schema.column("amount")
    assert (amount.type, amount.unit, amount.min, amount.max) == ("float", "CNY", 0, 1000)
    assert schema.column("grade").categories == ("A", "B", "C")
    assert schema.column("credit_code").format == "uscc"
    assert schema.arrow_schema().field("opened").type == pa.date32()


def test_round_trip_through_toml(schema_path, tmp_path):
    schema = load_schema(schema_path)
    again = load_schema(write_schema(schema, tmp_path / "copy.schema.toml"))
    assert again.columns == schema.columns and again.key == schema.key
    assert "[[columns]]" in dump_schema(schema)


@pytest.mark.parametrize(("text", "needle"), [
    ("[[columns]]\nname = 'a'\ntype = 'decimal'\n", "type must be one of"),
    ("[dataset]\nkey = ['id']\n[[columns]]\nname = 'a'\ntype = 'int'\n", "key column"),
    ("[[columns]]\nname = 'a'\ntype = 'category'\n", "categories"),
    ("[[columns]]\nname = 'a'\ntype = 'int'\nmin = 5\nmax = 1\n", "above max"),
    ("[[columns]]\nname = 'a'\ntype = 'int'\n[[columns]]\nname = 'a'\ntype = 'int'\n", "twice"),
    ("[dataset]\nname = 'x'\n", "at least one"),
    ("not toml at all [", "not valid TOML"),
    ("[[columns]]\nname = 'a'\ntype = 'int'\nsensitivity = 'secret'\n", "sensitivity"),
])
def test_bad_schema_files_are_rejected_with_the_file_named(tmp_path, text, needle):
    path = tmp_path / "bad.schema.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaFileError, match=needle) as info:
        load_schema(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


def test_missing_schema_file(tmp_path):
    with pytest.raises(SchemaFileError, match="not found"):
        load_schema(tmp_path / "nope.toml")
