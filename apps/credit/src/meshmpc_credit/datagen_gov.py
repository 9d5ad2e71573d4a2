"""The government data provider: registry, tax, invoices, social insurance, justice.

120 features in four groups: registration and legal records (25), eight
quarters of tax, VAT, invoices, purchases and social-insurance headcount
(48, ``_q1`` is the latest quarter), twelve-month aggregates and ratios of
those series (16) and annual-report, utility and other records (31).
Small firms report less (more missing values); sales and tax trends follow
the firm's financial health.
"""

from __future__ import annotations

import numpy as np

from meshmpc_credit.datagen_frame import (
    INDUSTRIES,
    Firms,
    Frame,
    category_codes,
    lognormal_level,
)

ENTERPRISE_TYPES = ("limited_liability", "joint_stock", "sole_proprietorship", "partnership",
                    "individual_business")
TAX_RATINGS = ("D", "C", "M", "B", "A")
CUSTOMS_LEVELS = ("none", "untrusted", "general", "certified", "advanced_certified")
QUARTERS = 8


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gov_frame(rng: np.random.Generator, firms: Firms) -> Frame:
    """The government's table for ``firms``."""
    frame = Frame(rng, firms.n)
    _registry(frame, firms)
    _justice(frame, firms)
    series = _quarterly(frame, firms)
    _aggregates(frame, firms, series)
    _records(frame, firms)
    _other_records(frame, firms)
    return frame


def _registry(f: Frame, firms: Firms) -> None:
    n, z, s, lg = firms.n, f.rng.standard_normal, firms.size, firms.legal
    capital = lognormal_level(f.rng, 5.0 + 0.9 * s, 0.8)
    kind = np.where(firms.individual, 4, f.rng.choice(4, n, p=[0.8, 0.05, 0.08, 0.07]))
    f.num("registration_age_years", firms.age, "year", 0, 60, "years since registration")
    f.num("registered_capital", capital, "CNY 10k", 1, 1e7, "registered capital")
    f.num("paid_in_capital", capital * _sigmoid(firms.health + z(n)), "CNY 10k", 0, 1e7,
          "paid-in capital", missing=0.08)
    f.cat("industry_code", firms.industry, INDUSTRIES, "GB/T 4754 section")
    f.cat("enterprise_type", kind, ENTERPRISE_TYPES, "legal form")
    f.cat("taxpayer_type", (s + 0.5 * z(n) > 0.3).astype(np.int64), ("small_scale", "general"),
          "VAT taxpayer type")
    f.cat("tax_credit_rating",
          category_codes(f.rng, firms.health - 0.6 * lg, [-1.8, -1.0, -0.3, 0.8]),
          TAX_RATINGS, "tax credit rating", missing=0.05)
    f.count("legal_rep_changes_3y", np.exp(-1.6 - 0.4 * firms.stability + 1.0 * firms.fraud),
            20, "changes of legal representative, 3 years")
    f.count("shareholder_changes_3y", np.exp(-1.2 - 0.3 * firms.stability), 50,
            "shareholder changes, 3 years")
    f.count("address_changes_3y", np.exp(-1.5 - 0.5 * firms.stability), 20,
            "registered address changes, 3 years")
    f.count("branch_count", np.exp(-1.0 + 0.7 * s), 500, "registered branches")
    f.count("trademark_count", np.exp(-0.5 + 0.7 * s), 2000, "registered trademarks")
    f.count("patent_count", np.exp(-1.0 + 0.8 * s + 0.8 * np.isin(firms.industry, [1, 6, 8])),
            5000, "granted patents")


def _justice(f: Frame, firms: Firms) -> None:
    """Lawsuits, enforcement, penalties, official lists and pledges."""
    n, s, lg = firms.n, firms.size, firms.legal
    defendant = f.rng.poisson(np.exp(-1.7 + 0.9 * lg + 0.3 * firms.leverage))
    f.count("litigation_count_3y", np.exp(-1.3 + 0.3 * s + 0.5 * lg) + defendant, 500,
            "lawsuits involving the firm, 3 years")
    f.num("litigation_as_defendant_3y", defendant, "count", 0, 500,
          "lawsuits as defendant, 3 years", "int")
    f.num("litigation_amount_3y", defendant * lognormal_level(f.rng, 3.0 + 0.5 * s, 1.0),
          "CNY 10k", 0, 1e7, "amount claimed against the firm, 3 years")
    f.count("enforcement_count", np.exp(-3.0 + 1.0 * lg - 0.7 * firms.health), 200,
            "court enforcement cases against the firm")
    penalties = f.rng.poisson(np.exp(-2.0 + 0.8 * lg))
    f.num("admin_penalty_count_3y", penalties, "count", 0, 200,
          "administrative penalties, 3 years", "int")
    f.num("admin_penalty_amount_3y", penalties * lognormal_level(f.rng, np.zeros(n), 1.2),
          "CNY 10k", 0, 1e5, "administrative penalty amounts, 3 years")
    f.flag("abnormal_operation_listed",
           _sigmoid(-4.2 - 1.0 * firms.stability - 0.6 * firms.health + 1.8 * firms.fraud),
           "on the abnormal list")
    f.flag("serious_violation_listed", _sigmoid(-5.5 + 1.0 * lg + 2.0 * firms.fraud),
           "on the serious-violation (dishonest) list")
    f.flag("tax_arrears_flag", _sigmoid(-3.3 - 1.2 * firms.health), "tax owed past due")
    f.flag("high_tech_enterprise", _sigmoid(-3.0 + s + np.isin(firms.industry, [6, 8])),
           "certified high-tech enterprise")
    f.count("equity_pledge_count", np.exp(-2.5 + 0.6 * firms.leverage), 50, "equity pledges")
    f.count("chattel_mortgage_count", np.exp(-2.0 + 0.5 * firms.leverage + 0.3 * s), 50,
            "chattel mortgages registered")


def _trend(firms: Firms, rng: np.random.Generator) -> np.ndarray:
    """Log-level offset per quarter (n x 8, column 0 = latest): health drives growth."""
    growth = 0.05 * firms.health - 0.07 * firms.fraud - 0.01 + 0.02 * rng.standard_normal(firms.n)
    ago = np.arange(QUARTERS)[None, :]
    return -growth[:, None] * ago + 0.12 * rng.standard_normal((firms.n, QUARTERS))


def _quarterly(f: Frame, firms: Firms) -> dict[str, np.ndarray]:
    """Eight quarters of five flows and headcount; returns the raw series."""
    n, s, rng = firms.n, firms.size, f.rng
    trend = _trend(firms, rng)
    missing = np.where(s < -1.0, 0.12, 0.03)[:, None] * np.ones((1, QUARTERS))
    sales = np.exp(4.0 + 1.0 * s[:, None] + 0.2 * firms.health[:, None] + trend)
    series = {
        "tax_paid": sales * np.exp(-2.6 + 0.3 * rng.standard_normal((n, QUARTERS))),
        "vat_paid": sales * np.exp(-3.0 + 0.25 * rng.standard_normal((n, QUARTERS))),
        "invoice_count": rng.poisson(np.exp(2.8 + 0.8 * s[:, None] + trend)),
        "invoice_amount": sales,
        "purchase_amount": sales * np.exp(-0.25 - 0.12 * firms.health[:, None]
                                          + 0.1 * rng.standard_normal((n, QUARTERS))),
        "social_insurance_headcount": rng.poisson(np.exp(1.6 + 0.8 * s[:, None] + 0.5 * trend)),
    }
    units = {"invoice_count": "count", "social_insurance_headcount": "person"}
    for name, values in series.items():
        for q in range(QUARTERS):
            kind = "int" if name in units else "float"
            f.num(f"{name}_q{q + 1}", values[:, q], units.get(name, "CNY 10k"), 0, 1e8,
                  f"{name.replace('_', ' ')}, quarter -{q}", kind,
                  missing=missing[:, q] if name != "social_insurance_headcount" else 0.02)
    return series


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b > 0, a / np.maximum(b, 1e-9), 0.0)


def _aggregates(f: Frame, firms: Firms, series: dict[str, np.ndarray]) -> None:
    year = {k: v[:, :4].sum(axis=1) for k, v in series.items()}
    prev = {k: v[:, 4:].sum(axis=1) for k, v in series.items()}
    for name in ("tax_paid", "invoice_amount", "purchase_amount"):
        f.num(f"{name}_12m", year[name], "CNY 10k", 0, 1e9, f"{name} over 12 months",
              missing=0.03)
    for name in ("tax_paid", "invoice_amount", "invoice_count", "social_insurance_headcount"):
        f.num(f"{name}_growth_yoy", _ratio(year[name], prev[name]) - 1, "ratio", -1, 100,
              f"{name} growth on the previous year", missing=0.04, decimals=4)
    f.num("gross_margin_proxy", 1 - _ratio(year["purchase_amount"], year["invoice_amount"]),
          "ratio", -5, 1, "1 - purchases / sales, 12 months", missing=0.04, decimals=4)
    f.num("tax_burden_rate", _ratio(year["tax_paid"], year["invoice_amount"]), "ratio", 0, 5,
          "tax paid / sales, 12 months", missing=0.04, decimals=4)
    n, z, s = firms.n, f.rng.standard_normal, firms.size
    f.count("invoice_customers_12m", np.exp(2.0 + 0.8 * s + 0.2 * firms.health), 1e6,
            "distinct buyers on sales invoices")
    f.count("invoice_suppliers_12m", np.exp(1.8 + 0.7 * s), 1e6, "distinct suppliers")
    f.num("top_customer_share", _sigmoid(-0.5 - 0.6 * s + 0.5 * z(n)), "ratio", 0, 1,
          "largest buyer's share of sales", decimals=4)
    f.num("invoice_void_rate_12m", _sigmoid(-4.0 + 0.5 * firms.fraud + 0.4 * z(n)), "ratio",
          0, 1, "voided invoices / issued", decimals=4)
    f.num("red_invoice_rate_12m", _sigmoid(-3.5 - 0.3 * firms.health + 0.4 * z(n)), "ratio",
          0, 1, "credit-note (red) invoices / issued", decimals=4)
    f.count("zero_declaration_months_12m", np.exp(-1.5 - 0.8 * firms.health - 0.5 * s), 12,
            "months with a zero tax declaration")
    f.count("late_declaration_count_12m", np.exp(-1.8 - 0.5 * firms.health - 0.4 * firms.stability),
            12, "late tax declarations")


def _records(f: Frame, firms: Firms) -> None:
    n, z, s, h = firms.n, f.rng.standard_normal, firms.size, firms.health
    rng = f.rng
    revenue = np.exp(5.4 + 1.0 * s + 0.2 * h + 0.3 * z(n))
    assets = revenue * np.exp(0.2 + 0.4 * z(n))
    debt_ratio = np.clip(_sigmoid(-0.2 + 0.6 * firms.leverage - 0.3 * h + 0.3 * z(n)), 0, 0.99)
    late_report = _sigmoid(-2.5 - 0.8 * firms.stability)
    f.flag("annual_report_on_time", 1 - late_report, "annual report filed on time")
    f.num("annual_report_revenue", revenue, "CNY 10k", 0, 1e9, "declared revenue", missing=0.1)
    f.num("annual_report_profit", revenue * (0.06 + 0.05 * h + 0.03 * z(n)), "CNY 10k",
          -1e8, 1e8, "declared profit", missing=0.12)
    f.num("annual_report_total_assets", assets, "CNY 10k", 0, 1e9, "declared total assets",
          missing=0.1)
    f.num("annual_report_liabilities", assets * debt_ratio, "CNY 10k", 0, 1e9,
          "declared liabilities", missing=0.12)
    f.num("debt_ratio", debt_ratio, "ratio", 0, 1, "liabilities / assets", missing=0.12,
          decimals=4)
    f.num("average_wage_base", np.exp(8.6 + 0.15 * s + 0.1 * h + 0.2 * z(n)), "CNY/month",
          1000, 1e5, "average social-insurance wage base", missing=0.05)
    f.count("social_insurance_arrears_months_12m", np.exp(-2.2 - 1.0 * h), 12,
            "months with social-insurance contributions in arrears")
    f.count("housing_fund_headcount", np.exp(0.8 + 0.9 * s), 1e5, "housing-fund contributors",
            missing=0.1)
    f.flag("housing_fund_arrears_flag", _sigmoid(-3.5 - 1.0 * h), "housing fund in arrears")
    f.flag("utility_arrears_flag", _sigmoid(-3.5 - 0.9 * h - 0.4 * firms.stability),
           "water/electricity bills in arrears")
    power = np.exp(9.5 + 1.0 * s + 0.1 * rng.standard_normal(n))
    f.num("electricity_usage_12m", power, "kWh", 0, 1e10, "metered electricity use",
          missing=0.15)
    f.num("electricity_growth_yoy", 0.05 * h + 0.08 * z(n), "ratio", -1, 10,
          "electricity use growth", missing=0.15, decimals=4)


def _other_records(f: Frame, firms: Firms) -> None:
    """Environment, safety, subsidies, assets, customs and tax-office records."""
    n, z, s, h = firms.n, f.rng.standard_normal, firms.size, firms.health
    rng = f.rng
    f.count("env_penalty_count_3y", np.exp(-3.0 + 0.6 * firms.legal), 50, "environmental penalties")
    f.count("safety_incident_count_3y", np.exp(-3.5 + 0.4 * firms.legal), 50, "safety incidents")
    f.count("quality_inspection_fail_count_3y", np.exp(-3.0 + 0.5 * firms.legal), 50,
            "failed product-quality inspections")
    f.num("government_subsidy_amount_3y", np.where(rng.random(n) < _sigmoid(-1.5 + s),
                                                   np.exp(2.0 + 0.8 * s + z(n)), 0.0),
          "CNY 10k", 0, 1e6, "subsidies received")
    f.count("government_procurement_wins_3y", np.exp(-2.0 + 0.9 * s), 1000,
            "public procurement contracts won")
    f.count("qualification_certificates", np.exp(0.0 + 0.6 * s), 500, "trade qualifications")
    f.count("land_use_rights_count", np.exp(-2.5 + 0.9 * s), 100, "land-use rights held")
    f.count("real_estate_count", np.exp(-1.8 + 0.8 * s + 0.2 * h), 500, "registered properties")
    f.count("vehicle_count", np.exp(0.0 + 0.7 * s), 1e4, "registered vehicles")
    f.num("export_amount_12m", np.where(rng.random(n) < 0.15, np.exp(3 + s + z(n)), 0.0),
          "CNY 10k", 0, 1e9, "customs export value")
    f.cat("customs_credit_level", category_codes(rng, 0.6 * s + 0.4 * h, [-1.5, -0.9, 0.9, 1.8]),
          CUSTOMS_LEVELS, "customs enterprise credit level")
    f.num("cross_region_sales_share", _sigmoid(-1.0 + 0.5 * s + 0.5 * z(n)), "ratio", 0, 1,
          "share of sales invoiced outside the home province", decimals=4, missing=0.05)
    f.count("invoice_months_active_12m", 12 * _sigmoid(2.5 + h + 0.8 * s), 12,
            "months with at least one sales invoice")
    f.num("tax_refund_amount_12m", np.where(rng.random(n) < 0.2, np.exp(0.5 + s + z(n)), 0.0),
          "CNY 10k", 0, 1e7, "tax refunds received")
    f.count("tax_penalty_count_3y", np.exp(-2.8 + 0.7 * firms.legal - 0.4 * h), 50,
            "tax penalties")
    f.count("dishonest_executor_count", np.exp(-4.2 + 1.2 * firms.legal + 1.2 * firms.fraud
                                              - 0.9 * h), 50,
            "entries on the dishonest-judgment-debtor list")
    f.count("bankruptcy_filings_3y", np.exp(-5.5 - 1.0 * h), 10, "bankruptcy filings involving it")
    f.count("consumer_complaints_3y", np.exp(-1.5 + 0.4 * firms.legal + 0.3 * s), 1000,
            "market-regulator consumer complaints")
