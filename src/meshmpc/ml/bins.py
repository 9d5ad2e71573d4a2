"""Fine binning on a party's own columns: cut points and bin indices, no labels.

Each feature owner turns its columns into *fine* bins locally (quantile,
equal-width or its private manual cut points for numeric columns; one bin per
category for categorical ones; one extra bin for missing values when there
are any). The bin indices form the group matrix of ``grouped_sum``; the bank
then merges fine bins from their label counts (:mod:`meshmpc.ml.merge`).

Everything is numpy per feature (sorting, ``searchsorted``), never per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.ml.binning import CATEGORICAL, NUMERIC, FeatureBins, numeric_values
from meshmpc.ml.woe import BinningError

METHODS = ("quantile", "equal_width", "chi", "manual")
MAX_FINE_BINS = 255
"""Fine bins per feature, missing bin included (indices fit a uint8)."""
MAX_CATEGORIES = MAX_FINE_BINS - 1
QUANTILE_SAMPLE = 200_000
"""Quantile cut points are computed on at most this many rows (an even stride)."""


@dataclass
class FineFeature:
    """One feature's fine bins: public layout (sent to the bank) and private cuts."""

    name: str
    kind: str
    n_bins: int
    has_missing: bool
    manual: bool
    edges: list[float] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)

    def layout(self) -> dict[str, Any]:
        """What the bank learns of the feature: no cut point, no category value."""
        return {"name": self.name, "kind": self.kind, "n_bins": self.n_bins,
                "missing": self.has_missing, "manual": self.manual}


@dataclass
class FineBins:
    """A party's fine binning: per feature its layout and an n x f uint8 index matrix."""

    features: list[FineFeature]
    groups: np.ndarray

    @property
    def n_groups(self) -> list[int]:
        return [f.n_bins for f in self.features]


def _cuts(values: np.ndarray, method: str, bins: int) -> list[float]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return []
    if method == "equal_width":
        low, high = float(present.min()), float(present.max())
        cuts = np.linspace(low, high, bins + 1)[1:-1] if high > low else np.array([])
    else:
        if present.size > QUANTILE_SAMPLE:
            present = present[:: present.size // QUANTILE_SAMPLE]
        cuts = np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="linear")
        cuts = cuts[cuts > present.min()]  # a cut at the minimum leaves an empty first bin
    return [float(c) for c in np.unique(cuts)]


def _manual_cuts(name: str, cuts: Any) -> list[float]:
    try:
        values = sorted({float(c) for c in cuts})
    except (TypeError, ValueError):
        raise BinningError(f"manual_cuts[{name!r}] must be a list of numbers, "
                           f"got {cuts!r}") from None
    if not all(np.isfinite(values)):
        raise BinningError(f"manual_cuts[{name!r}] holds a non-finite cut point")
    return values


def bin_of(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Number of edges <= each value (NaN: 0), i.e. ``searchsorted(side="right")``.

    With few edges, one vectorised comparison per edge beats a binary search per
    value (about three times faster for 10 bins at 10^6 rows).
    """
    if len(edges) > 32:
        return np.searchsorted(np.asarray(edges), values, side="right")
    index = np.zeros(values.shape, dtype=np.uint8)
    for edge in edges:
        index += values >= edge
    return index


def numeric_feature(name: str, column: pa.ChunkedArray, method: str, bins: int,
                    manual: Sequence[float] | None) -> tuple[FineFeature, np.ndarray]:
    """Fine bins of a numeric column and the bin of every row."""
    values = numeric_values(column, name)
    edges = _manual_cuts(name, manual) if manual is not None else _cuts(values, method, bins)
    if len(edges) + 2 > MAX_FINE_BINS:
        raise BinningError(f"column {name!r}: {len(edges) + 1} bins; at most "
                           f"{MAX_FINE_BINS - 1} fit (lower bins / fine_bins)")
    index = bin_of(values, edges)
    missing = np.isnan(values)
    has_missing = bool(missing.any())
    if has_missing:
        index[missing] = len(edges) + 1
    feature = FineFeature(name, NUMERIC, len(edges) + 1 + has_missing, has_missing,
                          manual is not None, edges=edges)
    return feature, index


def categorical_feature(name: str, column: pa.ChunkedArray) -> tuple[FineFeature, np.ndarray]:
    """One fine bin per distinct value (sorted), plus one for missing values."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    distinct = pc.unique(column).drop_null()
    if len(distinct) > MAX_CATEGORIES:
        raise BinningError(f"column {name!r} has {len(distinct)} distinct values; a "
                           f"categorical feature may have at most {MAX_CATEGORIES} "
                           f"(exclude it or bin it as numeric)")
    categories = pc.sort_indices(distinct)
    distinct = distinct.take(categories)
    index = pc.index_in(column, value_set=distinct).to_numpy(zero_copy_only=False)
    missing = np.isnan(index.astype(np.float64))
    has_missing = bool(missing.any())
    index = np.where(missing, len(distinct), index).astype(np.int64)
    feature = FineFeature(name, CATEGORICAL, len(distinct) + has_missing, has_missing, False,
                          categories=distinct.to_pylist())
    return feature, index


def is_numeric(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind) or pa.types.is_decimal(kind))


def fine_bins(table: pa.Table, columns: Sequence[str], method: str, bins: int,
              manual_cuts: Mapping[str, Sequence[float]], categorical: Sequence[str],
              ) -> FineBins:
    """Fine-bin ``columns`` of ``table``; string columns and ``categorical`` ones by value."""
    if method not in METHODS:
        raise BinningError(f"method must be one of {METHODS}, got {method!r}")
    if not 2 <= bins < MAX_FINE_BINS:
        raise BinningError(f"bins must be between 2 and {MAX_FINE_BINS - 1}, got {bins}")
    unknown = sorted(set(manual_cuts) - set(columns))
    if unknown:
        raise BinningError(f"manual_cuts name column(s) {unknown} that are not features here")
    features: list[FineFeature] = []
    # column-major: each feature's indices are contiguous (written and read per feature)
    groups = np.zeros((table.num_rows, len(columns)), dtype=np.uint8, order="F")
    for j, name in enumerate(columns):
        column = table.column(name)
        if name in manual_cuts or (name not in categorical and is_numeric(column.type)):
            feature, index = numeric_feature(name, column, method, bins,
                                             manual_cuts.get(name))
        else:
            feature, index = categorical_feature(name, column)
        features.append(feature)
        groups[:, j] = index
    return FineBins(features, groups)


def _plan_arrays(feature: FineFeature, plan: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
    """The plan's arrays, checked against this feature's layout (it came off the wire)."""
    try:
        mapping = np.asarray(plan["map"], dtype=np.int64)
        woe = np.asarray(plan["woe"], dtype=np.float64)
        count = np.asarray(plan["count"], dtype=np.int64)
        missing = plan["missing_bin"]
        iv = float(plan["iv"])
    except (KeyError, TypeError, ValueError):
        raise BinningError(f"feature {feature.name!r}: malformed merge plan") from None
    if mapping.shape != (feature.n_bins,) or woe.ndim != 1 or count.shape != woe.shape \
            or not woe.size or mapping.min() < 0 or mapping.max() >= woe.size \
            or not np.all(np.isfinite(woe)) or not np.isfinite(iv) \
            or (missing is not None and not 0 <= int(missing) < woe.size):
        raise BinningError(f"feature {feature.name!r}: the merge plan does not fit its "
                           f"{feature.n_bins} fine bins")
    return mapping, woe, count, np.array(-1 if missing is None else int(missing)), np.array(iv)


def apply_plan(feature: FineFeature, plan: Mapping[str, Any]) -> FeatureBins:
    """The final bins of ``feature`` from the bank's merge plan."""
    mapping, woe, count, missing_arr, iv = _plan_arrays(feature, plan)
    missing = int(missing_arr) if int(missing_arr) >= 0 else None
    n_values = feature.n_bins - feature.has_missing
    if feature.kind == NUMERIC:
        values = mapping[:n_values]
        if np.any(np.diff(values) < 0):
            raise BinningError(f"feature {feature.name!r}: the plan reorders numeric bins")
        edges = [feature.edges[j] for j in range(n_values - 1) if values[j] != values[j + 1]]
        separate = missing is not None and missing == len(edges) + 1
        if woe.size != len(edges) + 1 + separate:
            raise BinningError(f"feature {feature.name!r}: the plan's bins do not match its "
                               f"cut points")
        return FeatureBins(feature.name, NUMERIC, woe, count, float(iv), edges=edges,
                           missing_bin=missing)
    categories: list[list[Any]] = [[] for _ in range(woe.size)]
    for i, category in enumerate(feature.categories):
        categories[mapping[i]].append(category)
    if missing is not None:
        categories[missing].append(None)
    return FeatureBins(feature.name, CATEGORICAL, woe, count, float(iv),
                       categories=categories, missing_bin=missing)
