"""The three life-cycle reports: pre-loan, in-loan monitoring, post-loan (bank's view only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from meshmpc_credit.reports.html import Page, axes

GRADES = ("A", "B", "C", "D", "E")


def preloan_report(path: Path, funnel: Mapping[str, int], grades: Mapping[str, int],
                   auc: Mapping[str, float]) -> Path:
    """Funnel (applicants -> screened -> scored -> approved) and grade distribution."""
    page = Page("Pre-loan: screening and rating", "贷前：欺诈筛查与信用评级")
    page.heading("Funnel", "审批漏斗")
    fig, ax = axes()
    ax.barh(list(funnel)[::-1], list(funnel.values())[::-1], color="#4c72b0")
    ax.set_xlabel("applicants")
    page.figure(fig)
    page.text("From all applicants to approvals: risk-list hits by keyword PIR are declined, "
              "the joint scorecard grades the rest.",
              "从全部申请到批准：匿踪查询命中风险名单的申请被拒绝，其余由联合评分卡评级。")
    page.heading("Grade distribution", "评级分布")
    fig, ax = axes()
    ax.bar(list(grades), list(grades.values()), color="#55a868")
    ax.set_ylabel("applicants")
    page.figure(fig)
    page.table(["model", "AUC"], [[k, v] for k, v in auc.items()])
    return page.write(path)


def monitoring_report(path: Path, report: Mapping[str, Any], alerts: pd.DataFrame) -> Path:
    """Score drift, PSI by feature and alerts by month."""
    page = Page("In-loan monitoring", "贷中监控")
    months = [m["month"] for m in report["by_month"]]
    page.heading("Score drift (PSI, month over month)", "评分漂移（PSI，逐月）")
    fig, ax = axes()
    ax.plot(months, [m["psi"] for m in report["score_psi"]], marker="o", label="score PSI")
    ax.axhline(0.1, color="orange", ls="--", label="0.1 investigate")
    ax.axhline(0.25, color="red", ls="--", label="0.25 significant")
    ax.set_xlabel("month")
    ax.legend()
    page.figure(fig)
    page.text("PSI = sum (actual - expected) ln(actual / expected) on the previous month's "
              "deciles; 0.1 and 0.25 are the drift thresholds.",
              "PSI 以上月十分位分箱计算；0.1 为需关注，0.25 为显著漂移。")
    page.heading("PSI by feature (partners' populations)", "各特征 PSI（数据方全体样本）")
    fig, ax = axes(7, 4)
    features = report["feature_psi"]
    names = list(features)
    grid = np.array([features[n] for n in names])
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xticks(range(len(months)), months)
    ax.set_xlabel("month")
    fig.colorbar(image, ax=ax)
    page.figure(fig)
    page.heading("Alerts and decisions by month", "逐月预警与处置")
    fig, ax = axes()
    bottom = np.zeros(len(months))
    for kind in ("grade_drop", "score_drop", "new_list_hit"):
        values = np.array([m[kind] for m in report["by_month"]], dtype=float)
        ax.bar(months, values, bottom=bottom, label=kind)
        bottom += values
    ax.set_xlabel("month")
    ax.legend()
    page.figure(fig)
    page.table(["month", "keep 维持", "reduce 降额", "freeze 冻结"],
               [[m["month"], m["keep"], m["reduce"], m["freeze"]] for m in report["by_month"]])
    page.heading("Latest alerts", "最新预警")
    latest = alerts.sort_values(["month", "score"], ascending=[False, True]).head(20)
    page.table(list(latest.columns), latest.itertuples(index=False))
    return page.write(path)


def postloan_report(path: Path, report: Mapping[str, Any], watch: pd.DataFrame,
                    collection: pd.DataFrame) -> Path:
    """Watch list, collection list, roll rates and vintage curves."""
    page = Page("Post-loan: early warning and overdue management", "贷后：预警与逾期管理")
    page.heading(f"Watch list (month {report['as_of']})", "观察名单")
    page.text(", ".join(f"{k}: {v}" for k, v in report["watch"].items()),
              "预警等级：红 ≥ 0.30，橙 ≥ 0.15，黄 ≥ 0.05（未来三个月逾期概率）")
    page.table(list(watch.columns), watch.head(20).itertuples(index=False))
    page.heading("Collection list (expected loss = PD x exposure)",
                 "催收名单（预期损失 = PD × 敞口）")
    page.table(list(collection.columns), collection.head(20).itertuples(index=False))
    page.heading("Roll rates", "迁徙率")
    rows = report["roll_rates"]
    names = [r["from"] for r in rows]
    fig, ax = axes(5, 4)
    grid = np.array([[r[n] for n in names] for r in rows])
    ax.imshow(grid, cmap="Reds", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("next month")
    ax.set_ylabel("this month")
    page.figure(fig)
    page.heading("Vintage curves (ever 30+ days past due)", "账龄曲线（曾逾期 30 天以上）")
    fig, ax = axes()
    for cohort, values in report["vintages"].items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=cohort)
    ax.set_xlabel("months on book")
    ax.set_ylabel("share")
    ax.legend(fontsize=7)
    page.figure(fig)
    return page.write(path)
