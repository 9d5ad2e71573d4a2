"""The quality report: issues with their rows, per-column summaries, text and HTML.

Row numbers are 1-based data rows: row 1 is the first record after a CSV
header (line 2 of the file), or the first row of a Parquet file or query.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from meshmpc.data.errors import format_rows

ROWS_KEPT = 100
"""How many offending row numbers an issue keeps (the count is always exact)."""


@dataclass
class Issue:
    """One problem found in the data, with the rows where it occurs."""

    kind: str
    severity: str
    column: str | None
    message: str
    count: int = 0
    rows: list[int] = field(default_factory=list)

    def describe(self, path: str) -> str:
        """``file: column 'x': message (rows 3, 5)`` in one line."""
        where = f"column {self.column!r}: " if self.column else ""
        rows = f" ({format_rows(self.rows, self.count)})" if self.rows else ""
        return f"{path}: {where}{self.message}{rows}"


@dataclass
class ColumnSummary:
    """Distribution summary of one column over the whole file."""

    name: str
    type: str
    unit: str
    sensitivity: str
    present: int
    missing: int
    invalid: int = 0
    stats: dict[str, float | str] = field(default_factory=dict)
    top: list[tuple[str, int]] = field(default_factory=list)

    @property
    def missing_rate(self) -> float:
        total = self.present + self.missing + self.invalid
        return self.missing / total if total else 0.0


@dataclass
class QualityReport:
    """Everything a quality check found in one data file."""

    path: str
    schema_path: str
    dataset: str
    rows: int
    columns: list[ColumnSummary]
    issues: list[Issue]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when the data satisfies its schema (warnings allowed)."""
        return not self.errors

    def problems(self) -> list[str]:
        """One line per error, naming the file, column and rows."""
        return [issue.describe(self.path) for issue in self.errors]

    def to_text(self) -> str:
        return render_text(self)

    def to_html(self) -> str:
        return render_html(self)

    def write(self, directory: str | Path, stem: str | None = None) -> tuple[Path, Path]:
        """Write ``<stem>.quality.txt`` and ``<stem>.quality.html``; return both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        stem = stem or Path(self.path).name.split(".")[0]
        text = directory / f"{stem}.quality.txt"
        page = directory / f"{stem}.quality.html"
        text.write_text(self.to_text(), encoding="utf-8")
        page.write_text(self.to_html(), encoding="utf-8")
        return text, page


def _stat_text(summary: ColumnSummary) -> str:
    parts = [f"{k}={_fmt(v)}" for k, v in summary.stats.items()]
    if summary.top:
        parts.append("top: " + ", ".join(f"{v!s} ({n})" for v, n in summary.top))
    return "; ".join(parts)


def _fmt(value: float | str) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def render_text(report: QualityReport) -> str:
    """A plain-text report: verdict, issues with rows, then one line per column."""
    verdict = "PASS" if report.ok else "FAIL"
    lines = [
        f"Quality report: {report.path}",
        f"schema: {report.schema_path} (dataset {report.dataset!r})",
        f"rows: {report.rows}   columns: {len(report.columns)}   verdict: {verdict} "
        f"({len(report.errors)} error(s), {len(report.warnings)} warning(s))",
        "",
        "Issues:" if report.issues else "Issues: none",
    ]
    for issue in report.issues:
        rows = f"  [{format_rows(issue.rows, issue.count)}]" if issue.rows else ""
        column = issue.column or "-"
        lines.append(f"  {issue.severity.upper():7} {column:32} {issue.kind:18} "
                     f"{issue.message}{rows}")
    lines += ["", "Columns:"]
    for col in report.columns:
        unit = f" [{col.unit}]" if col.unit else ""
        lines.append(f"  {col.name}{unit} ({col.type}, {col.sensitivity}): "
                     f"missing {col.missing} ({col.missing_rate:.1%}), invalid {col.invalid}; "
                     f"{_stat_text(col)}")
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#eee}.error{color:#a00}.warning{color:#a60}.pass{color:#070}"
)


def _cell(value: object) -> str:
    return f"<td>{html.escape(str(value))}</td>"


def render_html(report: QualityReport) -> str:
    """A self-contained HTML page (no scripts) with the same content as the text."""
    verdict = "pass" if report.ok else "error"
    head = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Quality report "
            f"{html.escape(report.path)}</title><style>{_STYLE}</style></head><body>")
    parts = [
        head,
        f"<h1>Quality report: {html.escape(report.path)}</h1>",
        f"<p>Schema {html.escape(report.schema_path)} (dataset "
        f"{html.escape(report.dataset)}); {report.rows} rows, {len(report.columns)} columns; "
        f"<b class='{verdict}'>{'PASS' if report.ok else 'FAIL'}</b>: "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s).</p>",
        "<h2>Issues</h2><table><tr><th>severity</th><th>column</th><th>kind</th>"
        "<th>problem</th><th>count</th><th>rows</th></tr>",
    ]
    for issue in report.issues:
        rows = ", ".join(str(r) for r in issue.rows)
        parts.append(f"<tr class='{issue.severity}'>" + "".join(_cell(v) for v in (
            issue.severity, issue.column or "-", issue.kind, issue.message, issue.count, rows))
            + "</tr>")
    parts.append("</table><h2>Columns</h2><table><tr><th>column</th><th>type</th><th>unit</th>"
                 "<th>sensitivity</th><th>missing</th><th>invalid</th><th>summary</th></tr>")
    for col in report.columns:
        parts.append("<tr>" + "".join(_cell(v) for v in (
            col.name, col.type, col.unit, col.sensitivity,
            f"{col.missing} ({col.missing_rate:.1%})", col.invalid, _stat_text(col))) + "</tr>")
    parts.append("</table></body></html>\n")
    return "\n".join(parts)
