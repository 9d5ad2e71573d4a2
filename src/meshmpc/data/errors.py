"""Errors of the data layer; each names the file, and where known the column and rows.

All subclass :class:`meshmpc.errors.DataError` (itself a ``ValueError``), so a
caller can catch the whole family or the builtin.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshmpc.errors import DataError

MAX_ROWS_SHOWN = 10


def format_rows(rows: Sequence[int], total: int | None = None) -> str:
    """``rows 3, 7, 9 (and 12 more)``: a short, readable list of 1-based row numbers."""
    total = len(rows) if total is None else total
    shown = ", ".join(str(r) for r in list(rows)[:MAX_ROWS_SHOWN])
    word = "row" if total == 1 else "rows"
    more = total - min(len(rows), MAX_ROWS_SHOWN)
    return f"{word} {shown}" + (f" (and {more} more)" if more > 0 else "")


class SchemaFileError(DataError):
    """A schema file is missing, not TOML, or declares something inconsistent."""

    def __init__(self, path: object, problem: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        where = f"column {column!r}: " if column else ""
        super().__init__(f"schema {self.path}: {where}{problem}")


class DataReadError(DataError):
    """A data source cannot be opened or decoded (missing, empty, wrong encoding...)."""

    def __init__(self, path: object, problem: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        where = f"column {column!r}: " if column else ""
        super().__init__(f"{self.path}: {where}{problem}")


class SchemaViolation(DataError):
    """Data breaks its schema; carries the full :class:`QualityReport`.

    The message lists the first problems, each with its file, column and rows,
    so the user can fix the data (or the schema) without opening the report.
    """

    def __init__(self, path: object, problems: Sequence[str], report: object = None) -> None:
        self.path = str(path)
        self.problems = list(problems)
        self.report = report
        head = "; ".join(self.problems[:5])
        more = len(self.problems) - 5
        tail = f"; and {more} more problem(s)" if more > 0 else ""
        super().__init__(f"{self.path} breaks its schema: {head}{tail}")
