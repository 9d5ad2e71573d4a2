"""Backtest a strategy version on historical cases before publishing it.

A case is the decision context of a past applicant (as the decision service
stored it) and its outcome: ``bad`` = 1 / 0 when the loan was granted and
observed, ``None`` when history declined it (no outcome exists). Figures per
strategy: approval rate, bad rate by grade (cases with an outcome), expected
loss of the approved book, and against the version in service the swap
matrix (rows: champion's decision, columns: candidate's).

Outcomes of swap-ins (approved by the candidate, not by the champion) are
mostly unknown; they are **estimated by the score-band bad rate of approved
history**: the observed bad rate of cases with an outcome in the same
``BAND_POINTS``-wide score band (the overall observed rate when the band has
none). The same estimate stands in for any approved case without an outcome
in the expected loss: ``EL = LGD * sum(suggested_limit * pd)``, pd = the
observed outcome when known, else the band estimate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshmpc.errors import MeshMPCError
from meshmpc_credit.strategy.context import DECISIONS, GRADES
from meshmpc_credit.strategy.document import CompiledStrategy, Outcome

BAND_POINTS = 20
DEFAULT_LGD = 0.45
SWAP_IN_METHOD = f"score-band bad rate of approved history ({BAND_POINTS}-point bands)"


class HistoryError(MeshMPCError, ValueError):
    """A history file that cannot be read; names the file and line."""


@dataclass(frozen=True)
class Case:
    """One historical applicant: the stored decision context and the outcome if observed."""

    context: dict[str, Any]
    bad: int | None


def read_cases(path: Path) -> list[Case]:
    """JSON lines ``{"context": {...}, "bad": 0 | 1 | null}``; errors name file and line."""
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            bad = row.get("bad")
            if bad not in (0, 1, None) or not isinstance(row.get("context"), dict):
                raise ValueError("needs a 'context' object and 'bad' of 0, 1 or null")
        except (ValueError, AttributeError) as exc:
            raise HistoryError(f"{path} line {number}: {exc}") from None
        cases.append(Case(row["context"], bad))
    return cases


def band_of(score: float | None) -> int:
    return -1 if score is None else int(math.floor(float(score) / BAND_POINTS)) * BAND_POINTS


def band_bad_rates(cases: Sequence[Case]) -> tuple[dict[int, float], float]:
    """Observed bad rate per score band (cases with an outcome) and overall."""
    known = [c for c in cases if c.bad is not None]
    overall = sum(int(c.bad or 0) for c in known) / len(known) if known else 0.0
    totals: dict[int, list[int]] = {}
    for case in known:
        totals.setdefault(band_of(case.context.get("score")), []).append(int(case.bad or 0))
    return {band: sum(v) / len(v) for band, v in totals.items()}, overall


def estimated_pd(case: Case, bands: Mapping[int, float], overall: float) -> float:
    if case.bad is not None:
        return float(case.bad)
    return bands.get(band_of(case.context.get("score")), overall)


def summarize(outcomes: Sequence[Outcome], cases: Sequence[Case], bands: Mapping[int, float],
              overall: float, lgd: float) -> dict[str, Any]:
    """Approval rate, bad rate by grade and expected loss of one strategy's decisions."""
    approved = [i for i, o in enumerate(outcomes) if o.decision == "approve"]
    by_grade: dict[str, dict[str, Any]] = {}
    for grade in GRADES:
        rows = [i for i, o in enumerate(outcomes) if o.grade == grade]
        known = [i for i in rows if cases[i].bad is not None]
        bad = sum(int(cases[i].bad or 0) for i in known)
        by_grade[grade] = {"count": len(rows), "known": len(known), "bad": bad,
                           "bad_rate": bad / len(known) if known else None}
    loss = lgd * sum(outcomes[i].suggested_limit * estimated_pd(cases[i], bands, overall)
                     for i in approved)
    return {"cases": len(cases), "approved": len(approved),
            "approval_rate": len(approved) / len(cases) if cases else 0.0,
            "bad_rate_by_grade": by_grade, "expected_loss": loss}


def backtest(candidate: CompiledStrategy, cases: Sequence[Case],
             champion: CompiledStrategy | None = None, lgd: float = DEFAULT_LGD
             ) -> dict[str, Any]:
    """The candidate's figures, and the comparison with the champion when there is one."""
    bands, overall = band_bad_rates(cases)
    new = [candidate.evaluate(c.context) for c in cases]
    report: dict[str, Any] = {"strategy": candidate.name, "candidate": candidate.version,
                              "lgd": lgd, "swap_in_estimate": SWAP_IN_METHOD,
                              "figures": summarize(new, cases, bands, overall, lgd)}
    if champion is None:
        return report
    old = [champion.evaluate(c.context) for c in cases]
    report["champion"] = champion.version
    report["champion_figures"] = summarize(old, cases, bands, overall, lgd)
    report["change"] = _change(report["figures"], report["champion_figures"])
    report.update(_swaps(old, new, cases, bands, overall))
    return report


def _change(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, float]:
    return {"approval_rate": new["approval_rate"] - old["approval_rate"],
            "expected_loss": new["expected_loss"] - old["expected_loss"]}


def _swaps(old: Sequence[Outcome], new: Sequence[Outcome], cases: Sequence[Case],
           bands: Mapping[int, float], overall: float) -> dict[str, Any]:
    matrix = {a: {b: 0 for b in DECISIONS} for a in DECISIONS}
    for before, after in zip(old, new, strict=True):
        matrix[before.decision][after.decision] += 1
    swap_in = [i for i in range(len(cases))
               if old[i].decision != "approve" and new[i].decision == "approve"]
    swap_out = [i for i in range(len(cases))
                if old[i].decision == "approve" and new[i].decision != "approve"]
    out_known = [i for i in swap_out if cases[i].bad is not None]
    return {"swap_matrix": matrix,
            "swap_in": {"count": len(swap_in), "estimated_bad_rate": _mean(
                estimated_pd(cases[i], bands, overall) for i in swap_in)},
            "swap_out": {"count": len(swap_out), "known": len(out_known),
                         "bad_rate": _mean(float(cases[i].bad or 0) for i in out_known)}}


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None
