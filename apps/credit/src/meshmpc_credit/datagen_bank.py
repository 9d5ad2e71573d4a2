"""The bank's view: eight loan-application features and the labels.

Labels: ``days_overdue`` is the worst days-past-due over the 12 months after
the loan was granted; ``default_12m`` is 1 when it reached 90 days (the usual
default definition). The default probability follows the firm's hidden risk
(mostly visible to the partners) plus bank-side terms (term, collateral,
purpose), so the bank alone ranks applicants only moderately well.
"""

from __future__ import annotations

import numpy as np

from meshmpc_credit.datagen_frame import Firms, Frame, lognormal_level

TERMS = np.array([6, 12, 24, 36])
COLLATERAL = ("none", "property", "equipment", "receivables")
GUARANTEE = ("none", "personal", "guarantee_company")
PURPOSE = ("working_capital", "equipment_purchase", "expansion", "refinancing")
INTERCEPT = -3.9


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def bank_frame(rng: np.random.Generator, firms: Firms) -> Frame:
    """The bank's application table for ``firms`` (one row each, labels included)."""
    n, z = firms.n, rng.standard_normal
    frame = Frame(rng, n)
    amount = lognormal_level(rng, 12.3 + 0.6 * firms.size + 0.15 * firms.health, 0.5)
    term = TERMS[np.clip(np.searchsorted([-0.9, 0.1, 1.0], 0.4 * firms.size + z(n)), 0, 3)]
    collateral = np.where(rng.random(n) < _sigmoid(-0.3 + 0.8 * firms.size),
                          rng.integers(1, 4, n), 0)
    guarantee = np.where(collateral > 0, 0, rng.choice(3, n, p=[0.3, 0.45, 0.25]))
    purpose = np.where(rng.random(n) < _sigmoid(-2.2 + 0.5 * firms.leverage), 3,
                       rng.choice(3, n, p=[0.6, 0.2, 0.2]))
    internal_grade = 0.25 * firms.risk + z(n)
    frame.num("loan_amount", amount, "CNY", 50_000, 10_000_000, "amount applied for")
    frame.num("loan_term_months", term, "month", 6, 36, "term applied for", "int")
    frame.num("interest_rate", 4.0 + 0.45 * internal_grade + 0.2 * z(n), "%", 2.5, 18,
              "annual rate offered by the bank's own pricing")
    frame.cat("collateral_type", collateral, COLLATERAL, "collateral pledged")
    frame.cat("guarantee_type", guarantee, GUARANTEE, "third-party guarantee")
    frame.cat("loan_purpose", purpose, PURPOSE, "declared purpose")
    frame.num("relationship_years", firms.age * rng.uniform(0.1, 1.0, n), "year", 0, 40,
              "years the firm has banked here", missing=0.02)
    frame.num("avg_deposit_balance_6m",
              lognormal_level(rng, 11.0 + 0.8 * firms.size + 0.35 * firms.health, 0.9), "CNY",
              0, 1e9, "average deposit balance over six months", missing=0.04)
    logit = (INTERCEPT + firms.risk + 0.3 * (term == 36) + 0.35 * (collateral == 0)
             + 0.3 * (purpose == 3) + 0.4 * z(n))
    _labels(frame, rng, logit)
    return frame


def _labels(frame: Frame, rng: np.random.Generator, logit: np.ndarray) -> None:
    n = len(logit)
    default = rng.random(n) < _sigmoid(logit)
    late = ~default & (rng.random(n) < 0.6 * _sigmoid(logit + 1.5))
    days = np.where(default, rng.integers(90, 361, n),
                    np.where(late, rng.integers(1, 90, n), 0))
    frame.num("default_12m", default.astype(np.int64), "", 0, 1,
              "1 if 90+ days past due within 12 months of granting", "int",
              sensitivity="restricted")
    frame.num("days_overdue", days, "day", 0, 360, "worst days past due within 12 months",
              "int", sensitivity="restricted")
