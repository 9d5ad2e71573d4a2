"""Wider reference data and observation dates for the generator.

**Feature counts** (``--features bank=8,gov=500,fin=300,telco=192``): a party
asked for fewer features than its reference set keeps the first ones; one
asked for more gets extra *indicator* columns with the same signal structure
as the reference columns: each is a noisy view of one to three of the firm's
latent traits (health, leverage, legal risk, stability, size, age, fraud)
through an amount (log-normal), count (Poisson), ratio (logistic) or score
transform, some with missing values. A column's recipe (traits, weights,
noise, transform, missing rate) depends only on the seed, the party and the
column number, so every row group draws the same columns; each row group is
one n x m matrix product plus noise, with no per-row Python.

**Observation dates** (``--obs-date``): the bank's ``application_date`` (the
observation date of each sample) and, at the internet-finance company, one
*leak* feature: ``post_application_overdue_days``, the days overdue recorded
after the loan was granted (strongly predictive, since it is nearly the
label) with its ``post_application_overdue_days_recorded_at`` date, always
later than the applicant's observation date. A job that takes features as of
the observation date (:mod:`meshmpc.data.asof`) must leave it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from meshmpc.data.errors import DataError
from meshmpc.data.schema import Column
from meshmpc_credit.datagen_frame import Firms, Frame

DEFAULT_FEATURES = {"bank": 8, "gov": 120, "fin": 64, "telco": 29}
LABELS = ("default_12m", "days_overdue")
PREFIX = {"bank": "bank_ind", "gov": "gov_ind", "fin": "fin_ind", "telco": "tel_ind"}
KINDS = ("amount", "count", "ratio", "score")
KIND_SHARE = (0.35, 0.3, 0.25, 0.1)
OBS_START = np.datetime64("2024-01-01")
OBS_DAYS = 540
LEAK = "post_application_overdue_days"
MAX_FEATURES = 20_000


def parse_features(text: str) -> dict[str, int]:
    """``bank=8,gov=500`` (parties not named keep their reference count)."""
    counts = dict(DEFAULT_FEATURES)
    for item in (i for i in text.split(",") if i.strip()):
        party, _, value = item.partition("=")
        party = party.strip()
        if party not in DEFAULT_FEATURES:
            raise DataError(f"--features: unknown party {party!r}; use bank, gov, fin, telco")
        try:
            counts[party] = int(value)
        except ValueError:
            raise DataError(f"--features: {item!r} is not party=count") from None
        if not 1 <= counts[party] <= MAX_FEATURES:
            raise DataError(f"--features: {party} needs 1 to {MAX_FEATURES} features")
    return counts


@dataclass(frozen=True)
class Recipe:
    """How a party's extra columns derive from the latent traits (m columns)."""

    weights: np.ndarray
    noise: np.ndarray
    kind: np.ndarray
    missing: np.ndarray
    first: int


def recipe(seed: int, party: str, extra: int, first: int) -> Recipe:
    """The fixed recipe of ``party``'s ``extra`` columns (numbered from ``first``)."""
    rng = np.random.default_rng([seed, 900, list(DEFAULT_FEATURES).index(party)])
    weights = np.zeros((7, extra))
    for j in range(extra):
        traits = rng.choice(7, size=rng.integers(1, 4), replace=False)
        weights[traits, j] = rng.normal(0.0, 0.8, traits.size)
    noise = rng.uniform(0.6, 2.5, extra)
    kind = rng.choice(len(KINDS), extra, p=KIND_SHARE)
    missing = np.where(rng.random(extra) < 0.3, rng.uniform(0.01, 0.2, extra), 0.0)
    return Recipe(weights, noise, kind, missing, first)


def _latent(firms: Firms) -> np.ndarray:
    z_age = (np.log(firms.age) - 1.6) / 0.75
    return np.column_stack([firms.health, firms.leverage, firms.legal, firms.stability,
                            firms.size, z_age, firms.fraud.astype(np.float64) * 2.0])


def add_extra(frame: Frame, firms: Firms, party: str, plan: Recipe) -> None:
    """Append the recipe's columns for ``firms`` to ``frame``.

    The m x n signal matrix is drawn in float32 with one row per column (so each
    column is contiguous); counts are rounded exponentials of the noisy signal.
    """
    m = plan.weights.shape[1]
    signal = frame.rng.standard_normal((m, firms.n), dtype=np.float32)
    signal *= plan.noise[:, None].astype(np.float32)
    signal += (plan.weights.T @ _latent(firms).T).astype(np.float32)
    for j in range(m):
        name = f"{PREFIX[party]}_{plan.first + j:04d}"
        s, kind, missing = signal[j], KINDS[plan.kind[j]], float(plan.missing[j])
        text = f"synthetic {kind} indicator {plan.first + j} (wide reference data)"
        if kind == "amount":
            frame.num(name, np.exp(8.0 + 0.6 * s), "CNY", 0, 1e9, text, missing=missing)
        elif kind == "count":
            frame.num(name, np.exp(0.3 + 0.5 * s), "count", 0, 1e6, text, "int",
                      missing=missing)
        elif kind == "ratio":
            frame.num(name, 1.0 / (1.0 + np.exp(-s)), "ratio", 0, 1, text, missing=missing,
                      decimals=4)
        else:
            frame.num(name, 50.0 + 10.0 * s, "score", -1e3, 1e3, text, missing=missing)


def trim(frame: Frame, keep: int, fixed: tuple[str, ...] = ()) -> None:
    """Keep the first ``keep`` feature columns of ``frame`` (and the ``fixed`` ones)."""
    features = [c for c in frame.columns if c.name not in fixed]
    dropped = {c.name for c in features[keep:]}
    frame.columns = [c for c in frame.columns if c.name not in dropped]
    for name in dropped:
        del frame.arrays[name]


def shape_frame(frame: Frame, firms: Firms, party: str, count: int, seed: int) -> None:
    """Trim or widen ``frame`` to ``count`` features (labels stay last at the bank)."""
    fixed = LABELS if party == "bank" else ()
    base = len([c for c in frame.columns if c.name not in fixed])
    if count <= base:
        trim(frame, count, fixed)
    else:
        add_extra(frame, firms, party, recipe(seed, party, count - base, base + 1))
    if fixed:
        move_last(frame, fixed)


def move_last(frame: Frame, names: tuple[str, ...]) -> None:
    """Reorder so that ``names`` come last (in that order)."""
    frame.columns = [c for c in frame.columns if c.name not in names] + \
        [c for n in names for c in frame.columns if c.name == n]
    frame.arrays = {c.name: frame.arrays[c.name] for c in frame.columns}


def observation_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Application (observation) dates as days since 1970-01-01."""
    start = OBS_START.astype("datetime64[D]").astype(np.int64)
    return start + rng.integers(0, OBS_DAYS, n)


def add_obs_date(frame: Frame, days: np.ndarray) -> None:
    """The bank's ``application_date`` column, before the labels."""
    frame.add(Column("application_date", "date", nullable=False, sensitivity="internal",
                     description="date the loan application was decided (observation date)"),
              pa.array(days.astype(np.int32), type=pa.date32()))
    move_last(frame, LABELS)


def add_leak(frame: Frame, rng: np.random.Generator, days_overdue: np.ndarray,
             obs_days: np.ndarray, applicant: np.ndarray) -> None:
    """The leak feature and its recorded-at date (later than every observation date)."""
    n = len(days_overdue)
    value = np.where(applicant, days_overdue + rng.integers(0, 5, n), rng.poisson(8.0, n))
    frame.num(LEAK, value, "day", 0, 400, "days overdue recorded after the loan was granted",
              "int")
    recorded = obs_days + rng.integers(30, 366, n)
    frame.add(Column(f"{LEAK}_recorded_at", "date", nullable=False, sensitivity="internal",
                     description=f"date {LEAK} was recorded"),
              pa.array(recorded.astype(np.int32), type=pa.date32()))
