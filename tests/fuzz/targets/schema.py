"""The dataset schema parser (``<name>.schema.toml``) and the TOML it writes back."""

from __future__ import annotations

import tomllib

from meshmpc.data.errors import SchemaFileError
from meshmpc.data.schema import dump_schema, schema_from_dict


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    try:
        schema = schema_from_dict(doc, "fuzz.schema.toml")
    except SchemaFileError:
        return
    again = schema_from_dict(tomllib.loads(dump_schema(schema)), "fuzz.schema.toml")
    assert again.columns == schema.columns and again.key == schema.key, "no round trip"
    schema.arrow_schema()
