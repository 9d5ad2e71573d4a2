"""The decision context: every variable a pre-loan strategy may read, with its type.

The decision service builds this context for each applicant (bank fields, the
partners' PIR screens, the joint score) and the validator checks strategies
against it, so a strategy reading ``bank.loan_amont`` or comparing a string
field with a number is refused before it is published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PARTNERS = ("gov", "fin", "telco")
"""The partners whose risk lists are screened (one labelled PIR table each)."""

GRADES = ("A", "B", "C", "D", "E")
"""Grades from best to worst."""

DECISIONS = ("approve", "refer", "decline")

BANK_FIELDS: dict[str, str] = {
    "loan_amount": "number",
    "loan_term_months": "number",
    "interest_rate": "number",
    "collateral_type": "string",
    "guarantee_type": "string",
    "loan_purpose": "string",
    "relationship_years": "number",
    "avg_deposit_balance_6m": "number",
}
"""The bank's own application fields (the reference data's eight features)."""

SCREEN_FIELDS: dict[str, str] = {
    "listed": "boolean",
    "list_type": "string",
    "risk_level": "string",
    "listed_date": "string",
    "held": "boolean",
}
"""What one partner's labelled PIR answer gives the bank (reason code = ``list_type``;
``held``: the partner has data on the firm, from its joint record, null without one)."""


def context_types() -> dict[str, str]:
    """Every readable variable (dotted path) and its type: number, string, boolean, array."""
    types: dict[str, str] = {"score": "number", "unavailable": "array", "no_record": "array",
                             "bank": "object", "screen": "object"}
    types.update({f"bank.{name}": kind for name, kind in BANK_FIELDS.items()})
    for partner in PARTNERS:
        types[f"screen.{partner}"] = "object"
        types.update({f"screen.{partner}.{name}": kind for name, kind in SCREEN_FIELDS.items()})
    return types


def screen_entry(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """One partner's screen in the context: not listed, or listed with its reason code.

    A plain risk-list record means "listed"; a joint record (list columns and the
    masked score, :mod:`meshmpc_credit.decision.joint_table`) is listed when its
    ``list_type`` is set, and says whether the partner holds the firm."""
    if record is None:
        return {"listed": False, "list_type": None, "risk_level": None, "listed_date": None,
                "held": None}
    joint = "h" in record  # the joint record's short names (decision.joint_table)
    names = {"list_type": "t", "risk_level": "r", "listed_date": "d"} if joint else \
        {n: n for n in ("list_type", "risk_level", "listed_date")}
    fields = {name: _text(record.get(short)) for name, short in names.items()}
    listed = fields["list_type"] is not None if joint else True
    return {"listed": listed, **fields, "held": bool(record["h"]) if joint else None}


def build_context(bank_fields: Mapping[str, Any], screens: Mapping[str, dict[str, Any]],
                  score: float | None, unavailable: Sequence[str],
                  no_record: Sequence[str] = ()) -> dict[str, Any]:
    """The context one decision runs on (JSON-ready, so it can be stored and replayed).

    ``unavailable``: partners that could not answer; ``no_record``: partners that
    answered but have no score for the applicant (no joint score exists)."""
    bank = {name: bank_fields.get(name) for name in BANK_FIELDS}
    return {"score": None if score is None else round(float(score), 4),
            "bank": bank, "screen": {p: dict(screens.get(p) or screen_entry(None))
                                     for p in PARTNERS},
            "unavailable": sorted(unavailable), "no_record": sorted(no_record)}


def check_bank_fields(fields: Mapping[str, Any]) -> None:
    """Refuse bank fields of the wrong type, naming the field (missing ones are null)."""
    unknown = sorted(set(fields) - set(BANK_FIELDS))
    if unknown:
        raise ValueError(f"unknown bank field(s) {unknown}; expected {sorted(BANK_FIELDS)}")
    for name, value in fields.items():
        kind = BANK_FIELDS[name]
        if value is None:
            continue
        ok = isinstance(value, str) if kind == "string" else \
            isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise ValueError(f"bank field {name!r} must be a {kind}, got {value!r}")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
