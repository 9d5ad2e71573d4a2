"""The quality report: issues with their rows, per-column summaries, text and HTML.

Row numbers are 1-based data rows: row 1 is the first record after a CSV
header (line 2 of the file), or the first row of a Parquet file or query.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    values: list[str] = field(default_factory=list)
    """The offending values of the first ``rows`` (same order), as text."""

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
    description: str = ""
    histogram: tuple[list[float], list[int]] | None = None
    """Bin edges and (estimated) row counts per bin, for numeric columns."""
    classification: str = ""
    """JR/T 0171 / 0197 classification (C1-C3, L1-L5); values of C2+ / L3+ are masked."""

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
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC"))
    """When the check ran."""

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
    parts = [f"{k}={readable(v)}" for k, v in summary.stats.items()]
    if summary.top:
        parts.append("top: " + ", ".join(f"{v!s} ({n:,})" for v, n in summary.top[:5]))
    return "; ".join(parts)


def readable(value: float | int | str) -> str:
    """A number as people read it: ``2,532,310``, ``1,234.57``, ``0.0312`` (never 2.5e+06)."""
    if isinstance(value, str):
        return value
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    if abs(value) >= 1e-4:
        return f"{value:.4g}"
    return f"{value:.3e}"


def _rows_note(issue: Issue) -> str:
    shown = len(issue.rows)
    return f"first {shown} of {issue.count:,}" if shown < issue.count else f"all {issue.count:,}"


def render_text(report: QualityReport) -> str:
    """A plain-text report: verdict, issues with rows, then one line per column."""
    verdict = "PASS" if report.ok else "FAIL"
    lines = [
        f"Quality report: {report.path}",
        f"schema: {report.schema_path} (dataset {report.dataset!r})",
        f"rows: {report.rows:,}   columns: {len(report.columns)}   verdict: {verdict} "
        f"({len(report.errors)} error(s), {len(report.warnings)} warning(s))",
        f"checked: {report.created}",
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
        level = f", {col.classification}" if col.classification else ""
        lines.append(f"  {col.name}{unit} ({col.type}, {col.sensitivity}{level}): "
                     f"missing {col.missing:,} ({col.missing_rate:.1%}), invalid "
                     f"{col.invalid:,}; {_stat_text(col)}")
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:80em}table{border-collapse:collapse;"
    "margin:1em 0}td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;"
    "vertical-align:top}th{background:#eee}td.n{text-align:right}.error{color:#a00}"
    ".warning{color:#a60}.pass{color:#070}.muted{color:#666;font-size:90%}"
    "details{margin:.2em 0}code{background:#f4f4f4}"
)


def _cell(value: object, numeric: bool = False) -> str:
    cls = " class='n'" if numeric else ""
    return f"<td{cls}>{html.escape(str(value))}</td>"


def _issue_rows(issue: Issue) -> str:
    """Row numbers with the offending value beside each (first 100 of N, said so)."""
    if not issue.rows:
        return "<td>-</td>"
    pairs = [f"{row}: {value}" if value else str(row) for row, value in
             zip(issue.rows, issue.values + [""] * (len(issue.rows) - len(issue.values)),
                 strict=True)]
    items = "".join(f"<li>{html.escape(p)}</li>" for p in pairs)
    return (f"<td><details><summary>rows ({_rows_note(issue)})</summary>"
            f"<ul>{items}</ul></details></td>")


def _issues_html(report: QualityReport) -> list[str]:
    if not report.issues:
        return ["<h2>Issues</h2><p class='pass'>No issues: the data satisfies its schema.</p>"]
    parts = ["<h2>Issues</h2><table><tr><th>severity</th><th>column</th><th>kind</th>"
             "<th>problem</th><th>rows affected</th><th>row: value</th></tr>"]
    for issue in report.issues:
        parts.append(f"<tr class='{issue.severity}'>" + "".join([
            _cell(issue.severity), _cell(issue.column or "-"), _cell(issue.kind),
            _cell(issue.message), _cell(f"{issue.count:,}", numeric=True),
            _issue_rows(issue)]) + "</tr>")
    parts.append("</table>")
    return parts


def _chart(col: ColumnSummary) -> str:
    from meshmpc.data import charts

    if not (col.histogram or col.top):
        return "<span class='muted'>no chart (no values to plot)</span>"
    if not charts.available():
        return "<span class='muted'>charts need matplotlib (pip install meshmpc[report])</span>"
    if col.histogram:
        return charts.histogram_svg(*col.histogram)
    return charts.bars_svg(col.top)


def _columns_html(report: QualityReport) -> list[str]:
    if not report.columns:
        return []
    parts = ["<h2>Columns</h2><table><tr><th>column</th><th>description</th><th>type</th>"
             "<th>unit</th><th>sensitivity</th><th>classification</th><th>present</th><th>missing</th>"
             "<th>invalid</th><th>summary</th><th>distribution</th></tr>"]
    for col in report.columns:
        parts.append("<tr>" + "".join([
            _cell(col.name), _cell(col.description or "-"), _cell(col.type),
            _cell(col.unit or "-"), _cell(col.sensitivity), _cell(col.classification or "-"),
            _cell(f"{col.present:,}", True),
            _cell(f"{col.missing:,} ({col.missing_rate:.1%})", True),
            _cell(f"{col.invalid:,}", True), _cell(_stat_text(col) or "-"),
            f"<td>{_chart(col)}</td>"]) + "</tr>")
    parts.append("</table>")
    return parts


def render_html(report: QualityReport) -> str:
    """A self-contained HTML page (no scripts, charts inline) with the text's content."""
    verdict = "pass" if report.ok else "error"
    head = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Quality report "
            f"{html.escape(report.path)}</title><style>{_STYLE}</style></head><body>")
    parts = [
        head,
        f"<h1>Quality report: {html.escape(report.path)}</h1>",
        f"<p>Schema {html.escape(report.schema_path)} (dataset "
        f"{html.escape(report.dataset)}); {report.rows:,} rows, {len(report.columns)} columns; "
        f"<b class='{verdict}'>{'PASS' if report.ok else 'FAIL'}</b>: "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s).</p>",
        f"<p class='muted'>Checked {html.escape(report.created)}. Row numbers count data "
        f"rows from 1 (the header is not a row). Each issue keeps the first {ROWS_KEPT} "
        f"rows; the count is exact.</p>",
        *_issues_html(report),
        *_columns_html(report),
        "</body></html>\n",
    ]
    return "\n".join(parts)
