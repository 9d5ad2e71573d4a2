"""Self-contained HTML pages: matplotlib figures inlined as PNG, text in English and Chinese.

The machine's matplotlib has no CJK font, so plot labels are English and every
figure carries its Chinese title and caption in the HTML around it; the page
needs nothing from the network.

A report is read by people, so identifiers never appear in clear: a column
whose header names an identifier (``credit_code``, a phone, a name) is masked
by its rule (``91110108****1234``, ``138****5678``, ``张*``) and every other
cell and text has credit codes, ID numbers and phone numbers masked wherever
they occur (:mod:`meshmpc.data.protect`). The full values stay in the bank's
own result files, sealed under its vault key.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from meshmpc.data.protect import mask_kind_for, mask_text, mask_value  # noqa: E402

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "h1,h2{font-weight:600}.zh{color:#555}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
         "img{max-width:100%}")


@dataclass
class Page:
    """A report page built section by section."""

    title_en: str
    title_zh: str
    parts: list[str] = field(default_factory=list)

    def heading(self, en: str, zh: str) -> None:
        self.parts.append(f"<h2>{_escape(en)} <span class='zh'>{_escape(zh)}</span></h2>")

    def text(self, en: str, zh: str) -> None:
        self.parts.append(f"<p>{_escape(en)}<br><span class='zh'>{_escape(zh)}</span></p>")

    def figure(self, fig: Figure) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode()
        self.parts.append(f"<img alt='figure' src='data:image/png;base64,{data}'>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        kinds = [mask_kind_for(str(h)) for h in header]
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_shown(v, k))}</td>"
                                        for v, k in zip(row, kinds, strict=False))
                       + "</tr>" for row in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        title = f"{self.title_en} / {self.title_zh}"
        path.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
                        f"<body><h1>{html.escape(self.title_en)}<br><span class='zh'>"
                        f"{html.escape(self.title_zh)}</span></h1>{''.join(self.parts)}"
                        f"</body></html>", encoding="utf-8")
        return path


def _escape(text: str) -> str:
    return html.escape(mask_text(text))


def _shown(value: Any, kind: str) -> str:
    """A cell as a person may read it: identifiers masked by the column's rule or their shape."""
    text = _cell(value)
    return mask_value(text, kind) if kind != "auto" else mask_text(text)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def axes(width: float = 7.0, height: float = 3.2) -> tuple[Figure, Any]:
    """A new figure and its axes."""
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax
