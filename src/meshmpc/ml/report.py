"""The bank's HTML evaluation report: one self-contained file, plots as inline SVG.

Plots are drawn as SVG by this module (a few polylines and bars) rather than
by matplotlib: labels are bilingual (Chinese / English) and SVG text is
rendered by the reader's browser with its own CJK fonts, so the report needs
no font installed on the node, no JavaScript and no network to view.
Plots: ROC curve, KS curve, score distribution by class, IV by feature (when
the binning report is at hand), plus the tables of ``report.json``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshmpc.ml import metrics

WIDTH, HEIGHT, PAD = 420, 300, 44


def _scale(values: np.ndarray, lo: float, hi: float, size: float, flip: bool) -> np.ndarray:
    span = (hi - lo) or 1.0
    unit = (np.asarray(values, dtype=np.float64) - lo) / span
    return PAD + (1 - unit) * (size - 2 * PAD) if flip else PAD + unit * (size - 2 * PAD)


def _frame(title: str, xlabel: str, ylabel: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
            f'<rect width="100%" height="100%" fill="white"/>'
            f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13">'
            f'{html.escape(title)}</text>'
            f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
            f'stroke="black"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" '
            f'stroke="black"/>'
            f'<text x="{WIDTH / 2}" y="{HEIGHT - 10}" text-anchor="middle">'
            f'{html.escape(xlabel)}</text>'
            f'<text x="12" y="{HEIGHT / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {HEIGHT / 2})">{html.escape(ylabel)}</text>'
            f'{body}</svg>')


def _polyline(xs: np.ndarray, ys: np.ndarray, colour: str, bounds: tuple[float, ...]) -> str:
    x0, x1, y0, y1 = bounds
    px = _scale(xs, x0, x1, WIDTH, False)
    py = _scale(ys, y0, y1, HEIGHT, True)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}"/>'


def _thin(*arrays: np.ndarray, limit: int = 400) -> list[np.ndarray]:
    step = max(1, arrays[0].size // limit)
    return [a[::step] if a.size > limit else a for a in arrays]


def roc_svg(labels: np.ndarray, scores: np.ndarray) -> str:
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    fpr, tpr = _thin(fpr, tpr)
    body = _polyline(np.r_[fpr, 1.0], np.r_[tpr, 1.0], "#1f77b4", (0, 1, 0, 1))
    body += _polyline(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "#aaaaaa", (0, 1, 0, 1))
    auc = metrics.auc(labels, scores)
    return _frame(f"ROC 曲线 / ROC curve (AUC {auc:.3f})", "假正率 / false positive rate",
                  "真正率 / true positive rate", body)


def ks_svg(labels: np.ndarray, scores: np.ndarray) -> str:
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    share = np.linspace(0, 1, fpr.size)
    share, fpr, tpr = _thin(share, fpr, tpr)
    body = (_polyline(share, tpr, "#d62728", (0, 1, 0, 1))
            + _polyline(share, fpr, "#2ca02c", (0, 1, 0, 1))
            + _polyline(share, np.abs(tpr - fpr), "#1f77b4", (0, 1, 0, 1)))
    ks = metrics.ks(labels, scores)
    return _frame(f"KS 曲线 / KS curve (KS {ks:.3f})  红 bad 绿 good 蓝 KS",
                  "按风险排序的样本占比 / share of rows by risk", "累计占比 / cumulative share",
                  body)


def distribution_svg(labels: np.ndarray, values: np.ndarray, xlabel: str) -> str:
    y = np.asarray(labels).astype(bool)
    edges = np.histogram_bin_edges(values, bins=30)
    good, _ = np.histogram(values[~y], bins=edges)
    bad, _ = np.histogram(values[y], bins=edges)
    good_share = good / max(good.sum(), 1)
    bad_share = bad / max(bad.sum(), 1)
    top = float(max(good_share.max(initial=0), bad_share.max(initial=0))) or 1.0
    centres = (edges[:-1] + edges[1:]) / 2
    bounds = (float(edges[0]), float(edges[-1]), 0.0, top)
    body = (_polyline(centres, good_share, "#2ca02c", bounds)
            + _polyline(centres, bad_share, "#d62728", bounds))
    return _frame("分数分布 / score distribution (绿 good, 红 bad)", xlabel,
                  "占比 / share of class", body)


def iv_svg(iv: Mapping[str, float], top: int = 25) -> str:
    items = sorted(iv.items(), key=lambda kv: -kv[1])[:top]
    if not items:
        return ""
    biggest = max(v for _, v in items) or 1.0
    bar_h = (HEIGHT - 2 * PAD) / len(items)
    body = ""
    for i, (name, value) in enumerate(items):
        y = PAD + i * bar_h
        w = (WIDTH - 2 * PAD - 120) * value / biggest
        body += (f'<rect x="{PAD + 120}" y="{y:.1f}" width="{w:.1f}" height="{bar_h * 0.8:.1f}" '
                 f'fill="#1f77b4"/><text x="{PAD + 116}" y="{y + bar_h * 0.7:.1f}" '
                 f'text-anchor="end" font-size="9">{html.escape(name)} {value:.3f}</text>')
    return _frame("信息值 / information value (IV)", "IV", "", body)


def _table(rows: Sequence[Mapping[str, Any]], title: str) -> str:
    if not rows:
        return ""
    heads = list(rows[0])
    cells = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(h))}</td>" for h in heads) + "</tr>"
                    for r in rows)
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in heads)
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def write_report(path: Path, report: Mapping[str, Any], labels: np.ndarray,
                 probability: np.ndarray, score: np.ndarray | None = None,
                 iv: Mapping[str, float] | None = None, title: str = "meshmpc") -> Path:
    """Write the self-contained HTML report and return its path."""
    values = score if score is not None else probability
    xlabel = "评分 / score" if score is not None else "违约概率 / default probability"
    plots = [roc_svg(labels, probability), ks_svg(labels, probability),
             distribution_svg(labels, np.asarray(values, dtype=np.float64), xlabel)]
    if iv:
        plots.append(iv_svg(iv))
    summary = [{"指标 / metric": k, "值 / value": report[k]}
               for k in ("auc", "ks", "gini", "psi") if k in report]
    page = (f"<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)} 模型评估 / model evaluation</title><style>"
            f"body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}"
            f"td,th{{border:1px solid #ccc;padding:2px 6px;font-size:12px}}"
            f"svg{{margin:4px;border:1px solid #eee}}</style></head><body>"
            f"<h1>{html.escape(title)}: 模型评估 / model evaluation</h1>"
            f"<p>评估样本 / evaluated on: {html.escape(str(report.get('evaluated_on', '')))}"
            f" &middot; 样本数 / rows: {html.escape(str(report.get('rows', '')))}</p>"
            + _table(summary, "汇总 / summary") + "<div>" + "".join(plots) + "</div>"
            + _table(report.get("gains", []), "十分位提升与累计捕获 / lift and gains by decile")
            + _table(report.get("confusion", []), "不同阈值的混淆矩阵 / confusion at cut-offs")
            + _table(report.get("oot", []), "跨时间表现 / out-of-time by month")
            + "</body></html>")
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
