"""The internet-finance company (64 features) and the telecom operator (29 features).

Internet finance: eight activity measures over five nested look-back windows
(7, 30, 90, 180 and 360 days; each window contains the shorter ones, so the
counts are monotone) and 24 account-level features. Firms that never
borrowed on a platform have no first-loan date (missing by design).

Telecom: tenure, line stability, call, traffic and payment behaviour of the
firm's registered business lines.
"""

from __future__ import annotations

import numpy as np

from meshmpc_credit.datagen_frame import Firms, Frame, category_codes, lognormal_level

WINDOWS = (7, 30, 90, 180, 360)
PLANS = ("basic", "business", "business_plus", "enterprise")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _nested(rng: np.random.Generator, daily_rate: np.ndarray) -> np.ndarray:
    """Counts over the nested windows (n x 5): Poisson increments, cumulated."""
    spans = np.diff(np.array((0, *WINDOWS)))[None, :]
    return np.cumsum(rng.poisson(daily_rate[:, None] * spans), axis=1)


def fin_frame(rng: np.random.Generator, firms: Firms) -> Frame:
    """The internet-finance company's table for ``firms``."""
    frame = Frame(rng, firms.n)
    _windows(frame, firms)
    _accounts(frame, firms)
    _behaviour(frame, firms)
    return frame


def _windows(f: Frame, firms: Firms) -> None:
    rng, n, lev = f.rng, firms.n, firms.leverage
    hunger = np.exp(-3.6 + 0.9 * lev - 0.3 * firms.health + 0.8 * firms.fraud
                    + 0.3 * rng.standard_normal(n))
    apps = _nested(rng, hunger)
    platforms = np.minimum(apps, np.cumsum(rng.poisson(hunger[:, None] * 0.6 * np.diff(
        np.array((0, *WINDOWS)))[None, :]), axis=1))
    approve = _sigmoid(0.5 + 0.6 * firms.health - 0.4 * lev)[:, None]
    loans = rng.binomial(np.diff(np.concatenate([np.zeros((n, 1), int), apps], 1)), approve)
    loans = np.cumsum(loans, axis=1)
    ticket = lognormal_level(rng, 10.5 + 0.5 * firms.size, 0.6)[:, None]
    overdue_rate = np.exp(-5.0 + 0.8 * firms.risk + 0.2 * rng.standard_normal(n))
    overdue = _nested(rng, overdue_rate)
    worst = np.maximum.accumulate(
        np.where(overdue > 0, rng.integers(1, 60, (n, 5)) * (1 + (firms.risk > 1.5)[:, None]), 0),
        axis=1)
    measures = {
        "applications": (apps, "count", "loan applications"),
        "platforms_applied": (platforms, "count", "distinct platforms applied to"),
        "loans_granted": (loans, "count", "loans granted"),
        "loan_amount_granted": (loans * ticket, "CNY", "amount granted"),
        "overdue_count": (overdue, "count", "repayments that went overdue"),
        "overdue_amount": (overdue * ticket * 0.1, "CNY", "amount that went overdue"),
        "repayments": (_nested(rng, 0.5 * loans[:, -1] / 360 + 0.01), "count", "repayments made"),
        "max_overdue_days": (worst, "day", "worst days overdue"),
    }
    for name, (values, unit, text) in measures.items():
        for w, days in enumerate(WINDOWS):
            kind = "float" if unit == "CNY" else "int"
            f.num(f"{name}_{days}d", values[:, w], unit, 0, 1e9, f"{text}, last {days} days",
                  kind)


def _accounts(f: Frame, firms: Firms) -> None:
    rng, n, lev, h, s = f.rng, firms.n, firms.leverage, firms.health, firms.size
    z = rng.standard_normal
    platforms = rng.poisson(np.exp(0.3 + 0.6 * lev + 0.2 * s))
    limit = platforms * lognormal_level(rng, 11.0 + 0.6 * s + 0.3 * h, 0.5)
    use = np.clip(_sigmoid(-0.5 + 0.9 * lev - 0.4 * h + 0.4 * z(n)), 0, 1)
    ever = platforms + rng.poisson(np.exp(0.0 + 0.3 * lev))
    never = ever == 0
    f.num("platforms_ever_borrowed", ever, "count", 0, 400, "platforms ever borrowed from",
          "int")
    f.num("active_platforms", platforms, "count", 0, 200, "platforms with a live loan", "int")
    f.count("active_loans", platforms * 1.3, 500, "live loans")
    f.num("credit_limit_total", limit, "CNY", 0, 1e9, "sum of granted credit lines")
    f.num("outstanding_balance", limit * use, "CNY", 0, 1e9, "balance outstanding")
    f.num("credit_limit_utilization", np.where(never, 0, use), "ratio", 0, 1,
          "balance / credit lines", decimals=4)
    f.num("max_single_credit_limit", limit / np.maximum(platforms, 1) * 1.4, "CNY", 0, 1e9,
          "largest single credit line")
    f.num("avg_loan_term_months", 3 + 9 * _sigmoid(0.3 * s + z(n)), "month", 1, 60,
          "average term of platform loans", missing=np.where(never, 1.0, 0.02))
    f.num("first_loan_months_ago", firms.age * 12 * rng.uniform(0.05, 0.9, n), "month", 0, 480,
          "months since the first platform loan", "int", missing=np.where(never, 1.0, 0.0))
    f.count("last_loan_days_ago", np.exp(4.5 - 0.6 * lev), 3650, "days since the last loan",
            missing=np.where(never, 1.0, 0.0))
    f.num("repayment_on_time_rate_12m", _sigmoid(3.0 - 0.9 * firms.risk + 0.3 * z(n)), "ratio",
          0, 1, "repayments made on time, 12 months", missing=0.05, decimals=4)
    f.count("early_repayment_count_12m", np.exp(-0.5 + 0.5 * h), 100, "early repayments")
    f.count("max_overdue_days_ever", np.exp(1.0 + 1.0 * firms.risk), 3650,
            "worst days overdue ever")
    f.flag("current_overdue_flag", _sigmoid(-4.0 + 1.1 * firms.risk), "a loan is overdue now")
    f.num("current_overdue_amount", np.exp(8 + 0.8 * firms.risk + z(n))
          * (firms.risk + 0.7 * z(n) > 2.2), "CNY", 0, 1e9, "amount overdue now")


def _behaviour(f: Frame, firms: Firms) -> None:
    """Which kinds of lender, application behaviour, devices and e-commerce sales."""
    rng, n, lev, h, s = f.rng, firms.n, firms.leverage, firms.health, firms.size
    z = rng.standard_normal
    f.count("consumer_finance_platforms", np.exp(-0.8 + 0.7 * lev), 100,
            "consumer-finance companies borrowed from")
    f.count("bank_online_platforms", np.exp(-0.2 + 0.3 * s + 0.3 * h), 100,
            "banks' online lending products used")
    f.count("microloan_platforms", np.exp(-1.0 + 0.9 * lev - 0.2 * h), 100,
            "microloan companies borrowed from")
    f.count("rejected_applications_90d", np.exp(-1.5 + 0.9 * lev - 0.6 * h + 0.8 * firms.fraud),
            500, "applications rejected, 90 days")
    f.num("night_application_ratio_90d", _sigmoid(-2.5 + 0.5 * lev + 1.5 * firms.fraud
                                                  + 0.5 * z(n)), "ratio", 0, 1,
          "share of applications made 0:00-6:00", decimals=4, missing=0.1)
    f.count("device_count_90d", 1 + np.exp(-1.0 + 1.2 * firms.fraud + 0.3 * lev), 100,
            "distinct devices used to apply")
    f.count("contact_change_count_180d", np.exp(-1.5 - 0.5 * firms.stability + firms.fraud),
            100, "changes of contact phone or address")
    f.flag("supply_chain_finance_flag", _sigmoid(-1.5 + 0.6 * s), "uses supply-chain finance")
    f.num("ecommerce_gmv_12m", np.where(rng.random(n) < 0.35,
                                        lognormal_level(rng, 12 + s + 0.3 * h, 1.0), 0.0),
          "CNY", 0, 1e11, "online-shop sales volume, 12 months")


def telco_frame(rng: np.random.Generator, firms: Firms) -> Frame:
    """The telecom operator's table for ``firms`` (29 features)."""
    f = Frame(rng, firms.n)
    _lines(f, firms)
    _usage(f, firms)
    return f


def _lines(f: Frame, firms: Firms) -> None:
    rng, n, st, s, h = f.rng, firms.n, firms.stability, firms.size, firms.health
    z = rng.standard_normal
    tenure = np.clip(firms.age * 12 * _sigmoid(1.0 + 0.8 * st + 0.3 * z(n)), 1, None)
    f.num("tenure_months", tenure, "month", 0, 600, "months as a business customer", "int")
    f.count("line_count", np.exp(0.5 + 0.8 * s), 1e5, "registered lines and numbers")
    f.num("primary_number_tenure_months", tenure * _sigmoid(1.5 + 0.8 * st - 1.5 * firms.fraud),
          "month", 0, 600, "months the main contact number has been in use", "int")
    f.cat("plan_type", category_codes(rng, 0.8 * s, [-0.6, 0.5, 1.4]), PLANS, "tariff plan")
    f.num("monthly_fee_avg_6m", lognormal_level(rng, 5.5 + 0.7 * s, 0.4), "CNY", 0, 1e7,
          "average monthly bill, 6 months")
    f.num("fee_trend_6m", 0.04 * h + 0.05 * z(n), "ratio", -1, 10,
          "bill change over 6 months", decimals=4)
    arrears = rng.poisson(np.exp(-2.0 - 0.8 * h - 0.5 * st + 0.5 * firms.leverage))
    f.num("arrears_count_12m", arrears, "count", 0, 12, "months billed in arrears", "int")
    f.flag("arrears_flag", np.where(arrears > 0, 0.45, 0.02), "bill currently in arrears")
    f.num("arrears_amount", arrears * lognormal_level(rng, 5.0 + 0.5 * s, 0.7), "CNY", 0, 1e7,
          "amount in arrears")
    f.count("suspension_count_12m", np.exp(-2.5 - 0.6 * h - 0.3 * st), 12,
            "service suspensions for non-payment")
    f.count("number_change_12m", np.exp(-2.2 - 0.8 * st + 1.2 * firms.fraud), 50,
            "main numbers changed or cancelled")
    f.flag("real_name_verified", 0.97 - 0.3 * firms.fraud, "lines verified to the firm")
    f.num("payment_on_time_rate_12m", _sigmoid(2.5 + 0.8 * h + 0.4 * st + 0.4 * z(n)),
          "ratio", 0, 1, "bills paid on time, 12 months", decimals=4)
    f.flag("broadband_flag", _sigmoid(0.5 + 0.5 * s), "has business broadband")


def _usage(f: Frame, firms: Firms) -> None:
    rng, n, st, s = f.rng, firms.n, firms.stability, firms.size
    z = rng.standard_normal
    calls = lognormal_level(rng, 5.5 + 0.8 * s + 0.1 * firms.health, 0.4)
    f.num("call_minutes_avg_6m", calls * 2.4, "minute", 0, 1e8, "monthly call minutes",
          missing=0.03)
    f.num("call_count_avg_6m", calls, "count", 0, 1e8, "monthly calls", missing=0.03)
    f.num("outgoing_call_ratio", _sigmoid(0.2 + 0.3 * z(n)), "ratio", 0, 1,
          "outgoing share of calls", decimals=4, missing=0.03)
    f.count("distinct_contacts_6m", calls * 0.5, 1e7, "distinct numbers called or calling")
    f.num("contact_stability", _sigmoid(0.5 + 0.8 * st + 0.3 * z(n)), "ratio", 0, 1,
          "share of contacts also seen 6 months earlier", decimals=4, missing=0.05)
    f.num("night_call_ratio", _sigmoid(-2.8 + 0.8 * firms.fraud - 0.2 * st + 0.3 * z(n)),
          "ratio", 0, 1, "share of calls 0:00-6:00", decimals=4, missing=0.03)
    f.count("collection_calls_6m", np.exp(-1.5 + 0.9 * firms.risk), 1e4,
            "calls from known debt-collection numbers")
    f.count("roaming_days_6m", np.exp(1.5 + 0.3 * s), 183, "days roaming out of province")
    f.num("data_traffic_gb_avg_6m", lognormal_level(rng, 2.5 + 0.6 * s, 0.7), "GB", 0, 1e7,
          "monthly mobile data")
    f.count("sms_count_avg_6m", np.exp(3.5 + 0.6 * s), 1e7, "monthly SMS sent")
    f.num("active_days_avg_6m", 30 * _sigmoid(2.5 + 0.6 * st + 0.3 * firms.health), "day",
          0, 31, "days a month with traffic", decimals=1)
    f.num("location_stability", _sigmoid(1.2 + 0.9 * st + 0.3 * z(n)), "ratio", 0, 1,
          "share of days at the main base-station area", decimals=4, missing=0.06)
    f.count("base_station_count_6m", np.exp(2.5 + 0.4 * s - 0.3 * st), 1e5,
            "distinct base stations seen")
    f.num("workday_call_ratio", _sigmoid(1.3 + 0.3 * st + 0.3 * z(n)), "ratio", 0, 1,
          "share of calls on working days", decimals=4, missing=0.03)
    f.count("value_added_services", np.exp(0.5 + 0.4 * s), 100, "value-added services used")
