"""SecureBoost's plaintext algorithm: binning, objectives, split gains, tree building.

The label holder (the bank) runs :class:`TreeBuilder`. It grows one tree level
by level (XGBoost's exact gain formula on histograms, Chen and Guestrin 2016):
for every node to split it asks each *candidate source* for the cumulative
(gradient, hessian) sums of every split candidate (feature, bin), picks the
best over all sources, and asks the owner of the chosen candidate which rows
go left. A source is the bank's own features in the clear (:class:`LocalSource`)
or a partner over the mesh (meshmpc.ml.boost, histograms on encrypted
gradients). The plaintext reference of the tests runs the same builder with
every party's features as local sources, so the federated run must produce
the same trees.

Bins: per feature, quantile edges at k/bins (k < bins, duplicates dropped);
bin b holds edges[b-1] < x <= edges[b]; missing values (NaN) get bin ``bins``,
always on the right of a split. Candidate b of a feature sends bins <= b left,
i.e. x <= edges[b].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from meshmpc.crypto.prg import Prg


@dataclass
class BoostParams:
    """Training parameters (public to every party of the job)."""

    trees: int = 10
    depth: int = 3
    learning_rate: float = 0.3
    bins: int = 32
    l2: float = 1.0
    min_child_weight: float = 1.0
    gamma: float = 0.0
    objective: str = "logistic"
    subsample: float = 1.0
    colsample: float = 1.0
    goss: tuple[float, float] | None = None
    validation: float = 0.0
    early_stopping: int = 0
    frac_bits: int = 24
    scheme: str = "ou"
    key_bits: int = 2048
    insecure_test_key: bool = False

    @classmethod
    def from_mapping(cls, params: dict[str, Any]) -> BoostParams:
        """Parameters from a job's ``params`` (unknown names are an error)."""
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(params) - known)
        if bad:
            raise ValueError(f"ml.boost: unknown parameter(s) {bad}; known: {sorted(known)}")
        out = cls(**params)
        if out.goss is not None:
            out.goss = (float(out.goss[0]), float(out.goss[1]))
        out.check()
        return out

    def check(self) -> None:
        if not 2 <= self.bins <= 255:
            raise ValueError(f"ml.boost: bins must be 2..255, got {self.bins}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"ml.boost: objective must be one of {sorted(OBJECTIVES)}")
        if self.depth < 1 or self.trees < 1:
            raise ValueError("ml.boost: depth and trees must be at least 1")
        if not 0 < self.subsample <= 1 or not 0 < self.colsample <= 1:
            raise ValueError("ml.boost: subsample and colsample must be in (0, 1]")


# ---- binning ----------------------------------------------------------------

def quantile_edges(x: np.ndarray, bins: int) -> np.ndarray:
    """Quantile edges of one feature (NaN ignored; the top edge dropped)."""
    finite = x[~np.isnan(x)]
    if finite.size == 0:
        return np.zeros(0)
    qs = np.quantile(finite, np.arange(1, bins) / bins, method="lower")
    edges = np.unique(qs)
    return edges[edges < finite.max()]


def apply_edges(x: np.ndarray, edges: np.ndarray, bins: int) -> np.ndarray:
    """Bin indices (uint8) of one feature; NaN -> ``bins``."""
    out = np.searchsorted(edges, x, side="left").astype(np.uint8)
    out[np.isnan(x)] = bins
    return out


def bin_matrix(x: np.ndarray, bins: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Quantile-bin every column of x: (features x rows uint8, edges per feature)."""
    edges = [quantile_edges(x[:, j], bins) for j in range(x.shape[1])]
    out = np.empty((x.shape[1], x.shape[0]), dtype=np.uint8)
    for j, e in enumerate(edges):
        out[j] = apply_edges(x[:, j], e, bins)
    return out, edges


# ---- objectives ---------------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class Objective(Protocol):
    g_bound: float
    h_bound: float

    def base(self, y: np.ndarray) -> float: ...
    def grad_hess(self, margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def transform(self, margin: np.ndarray) -> np.ndarray: ...


class Logistic:
    """Binary log loss; |g| <= 1, 0 <= h <= 1/4."""

    g_bound, h_bound = 1.0, 0.25

    def base(self, y: np.ndarray) -> float:
        p = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        return float(np.log(p / (1 - p)))

    def grad_hess(self, margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = _sigmoid(margin)
        return p - y, p * (1 - p)

    def transform(self, margin: np.ndarray) -> np.ndarray:
        return _sigmoid(margin)


class Squared:
    """Squared error (regression); h = 1, |g| bounded per tree from the data."""

    g_bound, h_bound = 0.0, 1.0

    def base(self, y: np.ndarray) -> float:
        return float(y.mean())

    def grad_hess(self, margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return margin - y, np.ones_like(margin)

    def transform(self, margin: np.ndarray) -> np.ndarray:
        return margin


OBJECTIVES: dict[str, type] = {"logistic": Logistic, "squared": Squared}


# ---- split finding -------------------------------------------------------------

def split_gains(gl: np.ndarray, hl: np.ndarray, g: float, h: float,
                p: BoostParams) -> np.ndarray:
    """Gain of every candidate (left sums gl, hl) of a node with sums g, h; -inf if invalid."""
    gr, hr = g - gl, h - hl
    lam = p.l2
    gain = 0.5 * (gl**2 / (hl + lam) + gr**2 / (hr + lam) - g * g / (h + lam)) - p.gamma
    ok = (hl >= p.min_child_weight) & (hr >= p.min_child_weight)
    return np.where(ok, gain, -np.inf)


def cumulative_candidates(hist_g: np.ndarray, hist_h: np.ndarray, nbins_per_feature: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates from per-feature bin sums (features x bins): gl, hl and (feature, bin) ids."""
    cg, ch = np.cumsum(hist_g, axis=1), np.cumsum(hist_h, axis=1)
    f_idx, b_idx = np.nonzero(np.arange(hist_g.shape[1])[None, :] < nbins_per_feature[:, None] - 1)
    return cg[f_idx, b_idx], ch[f_idx, b_idx], np.stack([f_idx, b_idx], axis=1)


# ---- trees -------------------------------------------------------------------

@dataclass
class Node:
    """One node while a tree grows (bank side)."""

    id: int
    depth: int
    g: float
    h: float
    parent: int = -1
    sibling: int = -1


@dataclass
class NodePlan:
    """How a source gets a node's histogram: directly, or parent minus sibling."""

    node: int
    parent: int = -1
    sibling: int = -1

    @property
    def direct(self) -> bool:
        return self.parent < 0


class CandidateSource(Protocol):
    """A party's split candidates for the bank's tree builder."""

    party: str

    async def begin_tree(self, g: np.ndarray, h: np.ndarray, sample: np.ndarray,
                         features: np.ndarray | None) -> None: ...

    async def candidates(self, assign: np.ndarray, plans: list[NodePlan],
                         ) -> dict[int, tuple[np.ndarray, np.ndarray]]: ...

    async def split(self, assign: np.ndarray, chosen: dict[int, int]
                    ) -> dict[int, tuple[np.ndarray, int]]: ...

    async def end_tree(self) -> None: ...

    def n_features(self) -> int: ...


@dataclass
class Tree:
    """A tree at the bank: nodes as parallel lists (JSON-serialisable)."""

    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    owner: list[str] = field(default_factory=list)   # party of the split, "" for a leaf
    split: list[int] = field(default_factory=list)   # record id (partner) or candidate (bank)
    value: list[float] = field(default_factory=list)
    gain: list[float] = field(default_factory=list)

    def add(self) -> int:
        """A new leaf; returns its id."""
        self.left.append(-1)
        self.right.append(-1)
        self.owner.append("")
        self.split.append(-1)
        self.value.append(0.0)
        self.gain.append(0.0)
        return len(self.left) - 1

    def to_dict(self) -> dict[str, Any]:
        keys = ("left", "right", "owner", "split", "value", "gain")
        return {k: list(getattr(self, k)) for k in keys}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tree:
        return cls(**{k: list(v) for k, v in d.items()})


def random_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation from the OS-seeded C PRG."""
    return np.argsort(Prg(os.urandom(16)).uint64(n), kind="stable")


def random_uniform(n: int) -> np.ndarray:
    """n uniform floats in [0, 1) from the OS-seeded C PRG (sampling, not keys)."""
    return (Prg(os.urandom(16)).uint64(n) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


__all__: Sequence[str] = [
    "BoostParams", "CandidateSource", "Logistic", "Node", "NodePlan", "OBJECTIVES",
    "Squared", "Tree", "apply_edges", "bin_matrix", "cumulative_candidates",
    "quantile_edges", "random_permutation", "random_uniform", "split_gains",
]
