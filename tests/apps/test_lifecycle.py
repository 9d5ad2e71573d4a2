"""Life-cycle reports: self-contained bilingual HTML with plots; `credit monitor` command."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
from meshmpc_credit.reports.lifecycle import monitoring_report, postloan_report, preloan_report

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def _self_contained(path: Path, chinese: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert chinese in text
    assert not re.search(r"(src|href)=['\"]?https?:", text)
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert images and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)


def test_reports_are_self_contained_bilingual_pages_with_plots(tmp_path: Path) -> None:
    pre = preloan_report(tmp_path / "pre.html", {"applicants": 100, "approved": 60},
                         {"A": 10, "B": 20, "C": 30, "D": 25, "E": 15},
                         {"joint": 0.8, "bank only": 0.7})
    _self_contained(pre, "评级分布")
    months = range(1, 4)
    inloan = {"by_month": [{"month": m, "grade_drop": m, "score_drop": 1, "new_list_hit": 0,
                            "keep": 9, "reduce": 1, "freeze": 0} for m in months],
              "score_psi": [{"month": m, "psi": 0.05 * m} for m in months],
              "feature_psi": {"gov.tax_paid": [0.0, 0.02, 0.3]}}
    alerts = pd.DataFrame({"credit_code": ["a"], "month": [2], "score": [500.0],
                           "decision": ["reduce"]})
    _self_contained(monitoring_report(tmp_path / "mon.html", inloan, alerts), "评分漂移")
    post = {"as_of": 9, "watch": {"red": 1, "orange": 0, "yellow": 2},
            "roll_rates": [{"from": b, **{c: float(b == c) for c in BUCKETS}} for b in BUCKETS],
            "vintages": {"2025-01": [0.0, 0.1, 0.2]}}
    watch = pd.DataFrame({"credit_code": ["a"], "pd_3m": [0.4], "level": ["red"]})
    collect = pd.DataFrame({"credit_code": ["b"], "expected_loss": [100.0]})
    _self_contained(postloan_report(tmp_path / "post.html", post, watch, collect), "迁徙率")
