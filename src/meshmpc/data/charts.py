"""Charts for the HTML quality report: one small SVG per column, drawn by matplotlib.

The SVG text is embedded in the page, so the report works offline and sends
nothing anywhere. matplotlib is an optional dependency (``pip install
meshmpc[report]``); without it the report says so instead of a chart.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence

WIDTH_IN, HEIGHT_IN = 3.6, 1.6
FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
         "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "PingFang SC"]
"""Fonts tried in turn per glyph: Chinese category labels use the first CJK font
installed (e.g. ``apt-get install fonts-wqy-microhei`` or ``fonts-noto-cjk``)."""


def available() -> bool:
    """Whether charts can be drawn here."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _svg(figure: object) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")  # type: ignore[attr-defined]
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """Fonts with CJK fallback; without a CJK font, missing glyphs draw as boxes, silently
    (matplotlib would warn once per glyph on stderr, in the middle of a check's output)."""
    import matplotlib

    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": FONTS}), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*(Glyph|findfont)")
        yield


def _figure() -> tuple[object, object]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    axes = figure.add_subplot()
    axes.tick_params(labelsize=7)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def histogram_svg(edges: Sequence[float], counts: Sequence[int]) -> str:
    """A histogram of a numeric column (bin edges and counts) as inline SVG."""
    with _style():
        figure, axes = _figure()
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
        axes.bar(edges[:-1], counts, width=widths, align="edge",  # type: ignore[attr-defined]
                 color="#4a78a8", edgecolor="white", linewidth=0.4)
        axes.set_ylabel("rows", fontsize=7)  # type: ignore[attr-defined]
        return _svg(figure)


def bars_svg(top: Sequence[tuple[str, int]]) -> str:
    """A horizontal bar chart of the most frequent values as inline SVG."""
    labels = [label if len(label) <= 18 else label[:17] + "…" for label, _ in top][::-1]
    with _style():
        figure, axes = _figure()
        axes.barh(labels, [count for _, count in top][::-1],  # type: ignore[attr-defined]
                  color="#4a78a8")
        axes.set_xlabel("rows", fontsize=7)  # type: ignore[attr-defined]
        return _svg(figure)
