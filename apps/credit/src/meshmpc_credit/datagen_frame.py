"""Building blocks of the reference-data generator: latent firms and typed columns.

Every firm has hidden traits (size, age, financial health, leverage, legal
risk, stability, a fraud flag) drawn once from a seeded numpy Generator; each
party observes them only through its own noisy features, so the default
signal is spread across the parties (see docs/data.md). :class:`Frame`
collects one party's columns together with their schema, clipping every
value into its declared range so generated data always passes validation.

Synthetic data is exempt from the OS-randomness rule: numpy's Generator,
seeded by ``--seed``, makes every file reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from meshmpc.data.schema import Column

INDUSTRIES = ("A", "C", "E", "F", "G", "H", "I", "L", "M", "R")
"""GB/T 4754-2017 sections: agriculture, manufacturing, construction, wholesale and
retail, transport, hospitality, IT, leasing and business services, research, culture."""
INDUSTRY_SHARE = np.array([0.04, 0.22, 0.10, 0.27, 0.06, 0.08, 0.07, 0.09, 0.04, 0.03])
INDUSTRY_RISK = np.array([0.25, 0.0, 0.3, 0.1, 0.15, 0.35, -0.2, 0.05, -0.25, 0.2])
DIVISIONS = np.array([110105, 110108, 310115, 310104, 440305, 440303, 330106, 320505,
                      510107, 420106, 370202, 350203, 610113, 500112, 120116, 430104])
"""Administrative division codes (GB/T 2260) of the firms' registration districts."""


def seeded(seed: int, stream: int, chunk: int) -> np.random.Generator:
    """The Generator of one (stream, chunk) cell: independent of every other cell."""
    return np.random.default_rng([seed, stream, chunk])


@dataclass
class Firms:
    """Latent traits of ``n`` firms (all numpy arrays of length ``n``)."""

    serial: np.ndarray
    industry: np.ndarray
    division: np.ndarray
    individual: np.ndarray
    size: np.ndarray
    age: np.ndarray
    health: np.ndarray
    leverage: np.ndarray
    legal: np.ndarray
    stability: np.ndarray
    fraud: np.ndarray

    @property
    def n(self) -> int:
        return len(self.serial)

    @property
    def risk(self) -> np.ndarray:
        """The firm's true credit risk (log-odds scale, before bank-side terms)."""
        return (-0.9 * self.health + 0.75 * self.leverage + 0.55 * self.legal
                - 0.5 * self.stability - 0.2 * self.size + INDUSTRY_RISK[self.industry]
                + 2.2 * self.fraud)

    def take(self, rows: np.ndarray) -> Firms:
        return Firms(**{k: v[rows] for k, v in self.__dict__.items()})


def draw_firms(rng: np.random.Generator, serial: np.ndarray) -> Firms:
    """Draw latent traits; correlations: older, bigger firms are healthier and steadier."""
    n = len(serial)
    age = np.clip(rng.lognormal(1.6, 0.75, n), 0.3, 40.0)
    z_age = (np.log(age) - 1.6) / 0.75
    size = 0.35 * z_age + 0.94 * rng.standard_normal(n)
    health = 0.2 * size + 0.2 * z_age + 0.95 * rng.standard_normal(n)
    fraud = rng.random(n) < np.where(age < 2, 0.04, 0.01)
    return Firms(
        serial=serial,
        industry=rng.choice(len(INDUSTRIES), n, p=INDUSTRY_SHARE),
        division=DIVISIONS[rng.integers(0, len(DIVISIONS), n)],
        individual=rng.random(n) < 0.12,
        size=size,
        age=age,
        health=health - 0.8 * fraud,
        leverage=rng.standard_normal(n) - 0.3 * health + 0.8 * fraud,
        legal=rng.standard_normal(n) - 0.2 * health + 0.6 * fraud,
        stability=0.4 * z_age + 0.2 * health + 0.87 * rng.standard_normal(n) - 1.0 * fraud,
        fraud=fraud,
    )


class Frame:
    """One party's columns in order, each with its schema :class:`Column`."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng = rng
        self.n = n
        self.arrays: dict[str, pa.Array] = {}
        self.columns: list[Column] = []

    def _missing(self, rate: float | np.ndarray) -> np.ndarray | None:
        if np.all(np.asarray(rate) == 0):
            return None
        return self.rng.random(self.n) < rate

    def add(self, column: Column, array: pa.Array) -> None:
        self.columns.append(column)
        self.arrays[column.name] = array

    def num(self, name: str, values: np.ndarray, unit: str, low: float, high: float,
            description: str, kind: str = "float", missing: float | np.ndarray = 0.0,
            decimals: int = 2, sensitivity: str = "confidential") -> None:
        """A numeric column clipped to ``[low, high]`` with a share of missing values."""
        clipped = np.clip(values, low, high)
        data = np.rint(clipped).astype(np.int64) if kind == "int" else np.round(clipped, decimals)
        mask = self._missing(missing)
        self.add(Column(name, kind, unit=unit, min=low, max=high, description=description,
                        sensitivity=sensitivity, max_missing=_limit(missing),
                        nullable=mask is not None),
                 pa.array(data, mask=mask))

    def count(self, name: str, rate: np.ndarray, high: float, description: str,
              missing: float | np.ndarray = 0.0) -> None:
        """A Poisson count column with mean ``rate``."""
        values = self.rng.poisson(np.clip(rate, 0, 1e6))
        self.num(name, values, "count", 0, high, description, "int", missing)

    def flag(self, name: str, probability: np.ndarray, description: str,
             missing: float = 0.0) -> None:
        """A 0/1 indicator column."""
        values = (self.rng.random(self.n) < probability).astype(np.int64)
        self.num(name, values, "", 0, 1, description, "int", missing)

    def cat(self, name: str, codes: np.ndarray, categories: tuple[str, ...],
            description: str, missing: float = 0.0, sensitivity: str = "internal") -> None:
        """A categorical column from integer codes into ``categories``."""
        mask = self._missing(missing)
        indices = pa.array(codes.astype(np.int32), mask=mask)
        array = pa.DictionaryArray.from_arrays(indices, pa.array(categories)).cast(pa.string())
        self.add(Column(name, "category", categories=categories, description=description,
                        sensitivity=sensitivity, max_missing=_limit(missing) if missing else None,
                        nullable=bool(missing)), array)

    def table(self) -> pa.Table:
        return pa.table(self.arrays)


def _limit(missing: float | np.ndarray) -> float | None:
    """The declared missing-rate limit: a margin above the generated rate."""
    rate = float(np.mean(missing))
    return None if rate == 0 else round(min(1.0, rate * 2 + 0.05), 3)


def lognormal_level(rng: np.random.Generator, log_mean: np.ndarray, sigma: float) -> np.ndarray:
    """exp(log_mean + sigma * noise): a positive amount around ``exp(log_mean)``."""
    return np.exp(log_mean + sigma * rng.standard_normal(len(log_mean)))


def category_codes(rng: np.random.Generator, score: np.ndarray, cuts: list[float]) -> np.ndarray:
    """Ordinal category codes: ``score`` plus noise cut at ``cuts`` (0 = lowest score)."""
    return np.searchsorted(np.asarray(cuts), score + 0.5 * rng.standard_normal(len(score)))
