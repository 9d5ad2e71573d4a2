"""meshmpc.data: each party's local data, its schema, quality checks and loaders.

* :mod:`~meshmpc.data.schema`: schema TOML files (column, type, unit, range or
  categories, key, sensitivity) - :func:`load_schema`, :func:`write_schema`;
* :mod:`~meshmpc.data.loaders`: chunked readers for CSV, Parquet, SQLite and
  DB-API / SQLAlchemy sources - :func:`iter_batches`, :func:`load_table`;
* :mod:`~meshmpc.data.quality` / :mod:`~meshmpc.data.report`: the streaming
  quality check and its text/HTML report;
* :mod:`~meshmpc.data.validate`: :func:`validate` (raises on schema breaks),
  :func:`load_validated`, :func:`validate_inputs` (all inputs in one process);
* :mod:`~meshmpc.data.jobcheck`: :func:`validate_party_input`, run by every
  party at the start of a joint job (each checks its own data; one bad input
  stops the job everywhere, revealing only which party failed);
* :mod:`~meshmpc.data.uscc`: unified social credit codes (GB 32100-2015).
"""

from meshmpc.data.errors import DataReadError, SchemaFileError, SchemaViolation
from meshmpc.data.jobcheck import PeerInputError, validate_party_input
from meshmpc.data.loaders import iter_batches, load_table
from meshmpc.data.report import ColumnSummary, Issue, QualityReport
from meshmpc.data.schema import Column, Schema, dump_schema, load_schema, write_schema
from meshmpc.data.validate import check, load_validated, validate, validate_inputs

__all__ = [
    "Column",
    "ColumnSummary",
    "DataReadError",
    "Issue",
    "PeerInputError",
    "QualityReport",
    "Schema",
    "SchemaFileError",
    "SchemaViolation",
    "check",
    "dump_schema",
    "iter_batches",
    "load_schema",
    "load_table",
    "load_validated",
    "validate",
    "validate_inputs",
    "validate_party_input",
    "write_schema",
]
