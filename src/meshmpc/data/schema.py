"""Dataset schemas: what each column is, and what values it may hold.

A schema is a small TOML file kept beside the data it describes::

    [dataset]
    name = "bank"
    party = "bank"
    key = ["credit_code"]
    encoding = "utf-8"            # text encoding of CSV files

    [[columns]]
    name = "credit_code"
    type = "string"               # int | float | string | bool | category | date
    format = "uscc"               # optional: unified social credit code check
    nullable = false
    sensitivity = "confidential"  # public | internal | confidential | restricted
    classification = "C2"         # optional: JR/T 0171 category C1-C3 or JR/T 0197 level L1-L5

    [[columns]]
    name = "loan_amount"
    type = "float"
    unit = "CNY"
    min = 10000
    max = 5000000
    max_missing = 0.0             # missing-rate above this is reported

``classification`` decides where a column's values may appear in clear
(:mod:`meshmpc.data.protect`): values of a C2/C3 or L3-L5 column are masked in
quality reports, error messages and logs. A ``format = "uscc"`` column is C2
unless it says otherwise (a credit code identifies the enterprise, and for a
sole proprietor the person). An unknown level is an error naming the column.

Schemas are read with the standard library's ``tomllib`` and written by
:func:`dump_schema` (the format is flat enough not to need a TOML writer).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshmpc.data import protect
from meshmpc.data.errors import SchemaFileError
from meshmpc.userinput import check_known_keys

TYPES = ("int", "float", "string", "bool", "category", "date")
SENSITIVITY = ("public", "internal", "confidential", "restricted")
FORMATS = ("uscc",)
DATASET_KEYS = ("name", "party", "key", "encoding", "description")

_ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "category": pa.string(),
    "date": pa.date32(),
}


@dataclass(frozen=True)
class Column:
    """One column: its type, unit, allowed values and sensitivity."""

    name: str
    type: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    nullable: bool = True
    max_missing: float | None = None
    format: str | None = None
    sensitivity: str = "internal"
    description: str = ""
    classification: str | None = None

    @property
    def level(self) -> str | None:
        """The effective classification: the declared one, else C2 for a credit code."""
        if self.classification is not None:
            return self.classification
        return "C2" if self.format == "uscc" else None

    @property
    def masked(self) -> bool:
        """True when this column's values never appear in clear where a person reads."""
        return protect.needs_masking(self.level)

    @property
    def mask_kind(self) -> str:
        """How a value of this column is masked (credit_code, phone, name or auto)."""
        return protect.mask_kind_for(self.name, self.format)

    def shown(self, value: object) -> str:
        """``value`` as a person may read it: masked when the column is sensitive."""
        text = "" if value is None else str(value)
        return protect.mask_value(text, self.mask_kind) if self.masked and text else text

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type values of this column are converted to."""
        return _ARROW_TYPES[self.type]

    @property
    def numeric(self) -> bool:
        return self.type in ("int", "float")


@dataclass(frozen=True)
class Schema:
    """A dataset's schema: columns in order, key columns, party and encoding."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    party: str = ""
    encoding: str = "utf-8"
    description: str = ""
    path: str = field(default="", compare=False)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``; a SchemaFileError naming it when absent."""
        for col in self.columns:
            if col.name == name:
                return col
        raise SchemaFileError(self.path or self.name, "no such column in the schema", name)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema data of this dataset is converted to."""
        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns])


def load_schema(path: str | Path) -> Schema:
    """Read and check a schema TOML file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaFileError(path, "file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SchemaFileError(path, f"not valid TOML: {exc}") from None
    return schema_from_dict(raw, path)


def schema_from_dict(raw: dict[str, Any], path: object = "<schema>") -> Schema:
    """Build a :class:`Schema` from parsed TOML, checking every field."""
    _known(raw, ("dataset", "columns"), "the top level", path)
    dataset = raw.get("dataset", {})
    if not isinstance(dataset, dict):
        raise SchemaFileError(path, "[dataset] must be a table")
    _known(dataset, DATASET_KEYS, "[dataset]", path)
    columns_raw = raw.get("columns")
    if not isinstance(columns_raw, list) or not columns_raw:
        raise SchemaFileError(path, "needs at least one [[columns]] table")
    columns = tuple(_column_from_dict(c, path) for c in columns_raw)
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SchemaFileError(path, f"columns declared twice: {duplicates}")
    key_raw = dataset.get("key", [])
    if isinstance(key_raw, str):
        key_raw = [key_raw]
    if not isinstance(key_raw, list) or not all(isinstance(k, str) for k in key_raw):
        raise SchemaFileError(path, f"[dataset] key must be a column name or a list of them, "
                                    f"got {key_raw!r}")
    key = tuple(key_raw)
    for name in key:
        if name not in names:
            raise SchemaFileError(path, "key column is not declared in [[columns]]", name)
    return Schema(
        name=str(dataset.get("name", Path(str(path)).stem.split(".")[0])),
        columns=columns,
        key=key,
        party=str(dataset.get("party", "")),
        encoding=str(dataset.get("encoding", "utf-8")),
        description=str(dataset.get("description", "")),
        path=str(path),
    )


def _known(raw: dict[str, Any], valid: tuple[str, ...], where: str, path: object,
           column: str | None = None) -> None:
    problem = check_known_keys(raw, valid, where)
    if problem:
        raise SchemaFileError(path, problem, column)


def _column_from_dict(raw: dict[str, Any], path: object) -> Column:
    if not isinstance(raw, dict):
        raise SchemaFileError(path, f"each [[columns]] entry must be a table, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaFileError(path, f"a column has no name: {raw!r}")
    _known(raw, tuple(Column.__dataclass_fields__), "[[columns]]", path, name)
    kind = raw.get("type")
    if kind not in TYPES:
        raise SchemaFileError(path, f"type must be one of {TYPES}, got {kind!r}", name)
    sensitivity = raw.get("sensitivity", "internal")
    if sensitivity not in SENSITIVITY:
        raise SchemaFileError(path, f"sensitivity must be one of {SENSITIVITY}", name)
    classification = raw.get("classification")
    if classification is not None and classification not in protect.CATEGORIES + protect.LEVELS:
        raise SchemaFileError(path, f"classification {classification!r} is not one of "
                              f"{', '.join(protect.CATEGORIES + protect.LEVELS)} "
                              "(JR/T 0171 categories C1-C3, JR/T 0197 levels L1-L5)", name)
    fmt = raw.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise SchemaFileError(path, f"format must be one of {FORMATS}, got {fmt!r}", name)
    categories = raw.get("categories")
    if kind == "category" and not categories:
        raise SchemaFileError(path, "a category column needs a 'categories' list", name)
    if categories is not None and not isinstance(categories, list):
        raise SchemaFileError(path, f"'categories' must be a list, got {categories!r}", name)
    low, high, max_missing = (_number(raw, k, path, name) for k in ("min", "max", "max_missing"))
    if not isinstance(raw.get("nullable", True), bool):
        raise SchemaFileError(path, "'nullable' must be true or false", name)
    if low is not None and high is not None and low > high:
        raise SchemaFileError(path, f"min {low} is above max {high}", name)
    return Column(
        name=name,
        type=kind,
        unit=str(raw.get("unit", "")),
        min=None if low is None else float(low),
        max=None if high is None else float(high),
        categories=None if categories is None else tuple(str(c) for c in categories),
        nullable=bool(raw.get("nullable", True)),
        max_missing=max_missing,
        format=fmt,
        sensitivity=sensitivity,
        description=str(raw.get("description", "")),
        classification=classification,
    )


def _number(raw: dict[str, Any], key: str, path: object, column: str) -> float | None:
    """``raw[key]`` as a float (None when absent); a clear error when it is not a number."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaFileError(path, f"{key!r} must be a number, got {value!r}", column)
    return float(value)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and math.isfinite(value) and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def dump_schema(schema: Schema) -> str:
    """The TOML text of ``schema`` (round-trips through :func:`load_schema`)."""
    lines = ["[dataset]", f"name = {_toml_value(schema.name)}"]
    if schema.party:
        lines.append(f"party = {_toml_value(schema.party)}")
    lines.append(f"key = {_toml_value(list(schema.key))}")
    lines.append(f"encoding = {_toml_value(schema.encoding)}")
    if schema.description:
        lines.append(f"description = {_toml_value(schema.description)}")
    defaults = Column(name="", type="string")
    for col in schema.columns:
        lines += ["", "[[columns]]"]
        for attr in Column.__dataclass_fields__:
            value = getattr(col, attr)
            always = attr in ("name", "type", "sensitivity")
            if always or (value is not None and value != getattr(defaults, attr)):
                lines.append(f"{attr} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_schema(schema: Schema, path: str | Path) -> Path:
    """Write ``schema`` as TOML to ``path``."""
    path = Path(path)
    path.write_text(dump_schema(schema), encoding="utf-8")
    return path
