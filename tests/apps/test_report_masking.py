"""Credit reports are read by people: identifiers in them are masked, other figures are not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from meshmpc_credit.reports.html import Page
from meshmpc_credit.reports.lifecycle import postloan_report

CODES = ["91430104MFHH9RA756", "91370202872AQ6W68E"]
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def test_postloan_report_masks_credit_codes_and_keeps_figures(tmp_path: Path) -> None:
    post = {"as_of": 9, "watch": {"red": 1, "orange": 1, "yellow": 0},
            "roll_rates": [{"from": b, **{c: float(b == c) for c in BUCKETS}} for b in BUCKETS],
            "vintages": {"2025-01": [0.0, 0.1]}}
    watch = pd.DataFrame({"credit_code": CODES, "pd_3m": [0.4, 0.2], "level": ["red", "orange"]})
    collect = pd.DataFrame({"credit_code": CODES[:1], "exposure": [822133.0]})
    text = postloan_report(tmp_path / "post.html", post, watch, collect).read_text("utf-8")
    assert not any(code in text for code in CODES)
    assert "91430104****A756" in text and "91370202****W68E" in text
    assert "822,133" in text and "0.4" in text


def test_tables_mask_by_header_and_text_by_shape(tmp_path: Path) -> None:
    page = Page("t", "t")
    page.table(["contact_phone", "legal_rep_name", "note"],
               [["13812345678", "张三丰", f"call 13987654321 about {CODES[0]}"]])
    page.text(f"applicant {CODES[1]}", f"申请人 {CODES[1]}")
    text = page.write(tmp_path / "t.html").read_text("utf-8")
    for raw in ("13812345678", "张三丰", "13987654321", *CODES):
        assert raw not in text
    assert "138****5678" in text and "张**" in text and "139****4321" in text
