"""The regulator's fund-flow report: a self-contained bilingual HTML page (matplotlib
charts embedded as PNG), written beside the step's artefacts."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshmpc_supervision.grid import INSTITUTION_TYPES, REGIONS

NAME = "fundflow_report.html"


def write_report(table: pa.Table, plan: Mapping[str, Any], workdir: Path) -> str:
    """Write the report; returns its file name (relative to ``workdir``)."""
    frame = table.to_pandas()
    charts = [_chart_by_region(frame), _chart_by_month(frame)] if len(frame) else []
    median = "amount_p50_fen" in frame.columns
    rows = "".join(_row(r, median) for r in frame.sort_values(
        "flagged_rate", ascending=False).head(30).itertuples())
    noise = (f"ε = {plan['epsilon']:g} (离散拉普拉斯噪声 / discrete Laplace noise)"
             if plan["epsilon"] else "无噪声 / no noise")
    grid = plan["grid"]
    page = f"""<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>信贷资金流向监测 / Credit fund-flow monitoring</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>信贷资金流向监测 / Credit fund-flow monitoring</h1>
<p>{len(plan['banks'])} 家银行 / banks; {grid.size} 个单元 / cells; 公布 / published {len(frame)};
小单元抑制 / small-cell suppression: &lt; {plan['min_count']} 笔贷款或 / loans or &lt;
{plan['min_institutions']} 家机构 / institutions; {noise}.</p>
{''.join(charts)}
<h2>违规率最高的单元 / Cells with the highest flagged rate (top 30)</h2>
<table><tr><th>地区 / region</th><th>机构类型 / institution type</th><th>月份 / month</th>
<th>贷款笔数 / loans</th><th>违规笔数 / flagged</th><th>违规率 / rate</th>
<th>违规金额(万元) / flagged amount (10k CNY)</th>{_median_head(median)}</tr>{rows}</table>
</body></html>"""
    (workdir / NAME).write_text(page, encoding="utf-8")
    return NAME


def _median_head(median: bool) -> str:
    return ("<th>金额中位数(万元,分桶) / median amount (10k CNY, bucketed)</th>"
            if median else "")


def _row(r: Any, median: bool) -> str:
    zh, en = REGIONS.get(r.region, (r.region, r.region))
    kind_zh, kind_en = INSTITUTION_TYPES.get(r.institution_type, ("", r.institution_type))
    extra = f"<td>{r.amount_p50_fen / 1e6:,.1f}</td>" if median else ""
    return (f"<tr><td>{html.escape(zh)} / {html.escape(en)}</td><td>{kind_zh} / {kind_en}"
            f"</td><td>{r.month}</td><td>{r.loans:,}</td><td>{r.flagged:,}</td>"
            f"<td>{r.flagged_rate:.2%}</td><td>{r.flagged_amount_fen / 1e6:,.1f}</td>"
            f"{extra}</tr>")


def _figure_html(fig: Any, title: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<h2>{title}</h2><img alt="{title}" src="data:image/png;base64,{encoded}">'


def _chart_by_region(frame: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = frame.groupby("region")[["flagged", "loans"]].sum()
    by = (by["flagged"] / by["loans"]).sort_values(ascending=False)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar([REGIONS.get(c, (c, c))[1] for c in by.index], by.values * 100)
    ax.set_ylabel("flagged rate (%)")
    ax.tick_params(axis="x", rotation=70)
    try:
        return _figure_html(fig, "各地区违规率 / Flagged rate by region")
    finally:
        plt.close(fig)


def _chart_by_month(frame: Any) -> str:
    import matplotlib.pyplot as plt

    by = frame.groupby(["month", "institution_type"])[["flagged", "loans"]].sum()
    rate = (by["flagged"] / by["loans"]).unstack()
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for kind in rate.columns:
        ax.plot(rate.index, rate[kind].values * 100, marker="o",
                label=INSTITUTION_TYPES.get(kind, ("", kind))[1])
    ax.set_ylabel("flagged rate (%)")
    ax.legend()
    ax.tick_params(axis="x", rotation=45)
    try:
        return _figure_html(fig, "按月趋势 / Monthly trend by institution type")
    finally:
        plt.close(fig)


GREEN_NAME = "green_report.html"
GREEN_TITLES = {"green_share": "绿色贷款占比 / green loan share",
                "growth": "绿色贷款增速 / growth of green lending",
                "npl_ratio": "绿色贷款不良率 / green NPL ratio",
                "carbon_intensity": "融资企业碳强度 / carbon intensity of financed firms"}


def write_green_report(table: pa.Table, plan: Mapping[str, Any], workdir: Path) -> str:
    """The regulator's green-finance page: ranking, scores, the public bands."""
    frame = table.to_pandas()
    points = [c for c in frame.columns if c.startswith("points_")]
    head = "".join(f"<th>{html.escape(GREEN_TITLES[c[7:]])}</th>" for c in points)
    rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{html.escape(str(r['institution']))}</td>"
        f"<td>{r['score']}</td>" + "".join(f"<td>{r[c]}</td>" for c in points) + "</tr>"
        for r in frame.to_dict("records"))
    bands = "".join(
        f"<tr><td>{html.escape(GREEN_TITLES[name])}</td><td>"
        f"{'越高越好 / higher is better' if b.higher else '越低越好 / lower is better'}</td>"
        f"<td>{', '.join(f'{t:g}' for t in b.thresholds)}</td>"
        f"<td>{', '.join(str(p) for p in b.points)}</td></tr>"
        for name, b in plan["bands"].items())
    detail = ("各指标得分已公布 / per-indicator points published" if points else
              "仅公布总分 / total score only")
    page = f"""<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>绿色金融联合评价 / Green-finance joint evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>绿色金融联合评价 / Green-finance joint evaluation ({plan['year']})</h1>
<p>{len(plan['banks'])} 家机构 / institutions; {detail}. 碳强度来自政府环境数据,按公开企业名录
联合计算,单个企业的数值不离开政府 / carbon intensities come from the government's data and
are combined over the public firm registry; no firm's value leaves the government.</p>
{_score_chart(frame) if len(frame) else ''}
<h2>排名 / Ranking</h2>
<table><tr><th>名次 / rank</th><th>机构 / institution</th><th>总分 / score</th>{head}</tr>
{rows}</table>
<h2>评分规则 / Scoring bands (public)</h2>
<table><tr><th>指标 / indicator</th><th>方向 / direction</th><th>门槛 / thresholds</th>
<th>分值 / points</th></tr>{bands}</table>
</body></html>"""
    (workdir / GREEN_NAME).write_text(page, encoding="utf-8")
    return GREEN_NAME


def _score_chart(frame: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(frame["institution"].astype(str), frame["score"])
    ax.set_ylabel("score")
    try:
        return _figure_html(fig, "各机构总分 / Score by institution")
    finally:
        plt.close(fig)


RELATED_NAME = "related_report.html"


def write_related_report(table: pa.Table, groups: int, banks: int, workdir: Path) -> str:
    """The regulator's related-party page: groups lending at several banks, the largest
    exposures, and how many banks the groups spread over."""
    frame = table.to_pandas().sort_values("exposure_fen", ascending=False)
    rows = "".join(
        f"<tr><td>{html.escape(str(r['group']))}</td><td>{r['members']}</td>"
        f"<td>{r['banks']}</td><td>{r['exposure_fen'] / 1e6:,.1f}</td></tr>"
        for r in frame.head(50).to_dict("records"))
    page = f"""<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>关联企业跨行授信 / Related-party exposure across banks</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>关联企业跨行授信 / Related-party exposure across banks</h1>
<p>{banks} 家银行 / banks; 工商登记关联企业群 / registry groups: {groups:,};
在多家银行有贷款的企业群 / groups borrowing at several banks: {len(frame):,};
合计敞口 / their total exposure: {frame['exposure_fen'].sum() / 1e6:,.1f} 万元 / 10k CNY.
只在一家银行借款的企业群不被披露 / groups borrowing at one bank only are not disclosed.</p>
{_banks_chart(frame) if len(frame) else ''}
<h2>敞口最大的企业群 / Largest exposures (top 50)</h2>
<table><tr><th>企业群(最小统一社会信用代码) / group (smallest credit code)</th>
<th>成员企业 / member firms</th><th>授信银行 / lending banks</th>
<th>合计敞口(万元) / total exposure (10k CNY)</th></tr>{rows}</table>
</body></html>"""
    (workdir / RELATED_NAME).write_text(page, encoding="utf-8")
    return RELATED_NAME


def _banks_chart(frame: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = frame.groupby("banks")["exposure_fen"].agg(["size", "sum"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.bar(by.index.astype(str), by["size"])
    left.set_xlabel("lending banks")
    left.set_ylabel("groups")
    right.bar(by.index.astype(str), by["sum"] / 1e6)
    right.set_xlabel("lending banks")
    right.set_ylabel("exposure (10k CNY)")
    try:
        return _figure_html(fig, "按授信银行数 / By number of lending banks")
    finally:
        plt.close(fig)
