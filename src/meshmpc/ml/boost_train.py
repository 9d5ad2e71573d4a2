"""SecureBoost training at the label holder: the tree builder and the boosting loop.

The builder never sees a partner's feature values or bins: a partner is a
:class:`~meshmpc.ml.boost_core.CandidateSource` returning (gradient, hessian)
sums per anonymous candidate index, and left/right masks for the rows of the
nodes it splits. The bank's own features are a :class:`LocalSource` (in the
clear). Histogram subtraction: of two siblings only the one with fewer sampled
rows is summed; the other is parent minus it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshmpc.ml.boost_core import (
    OBJECTIVES,
    BoostParams,
    CandidateSource,
    NodePlan,
    Tree,
    cumulative_candidates,
    random_permutation,
    random_uniform,
    split_gains,
)


class LocalSource:
    """Split candidates of features held in the clear by the party running the builder."""

    def __init__(self, party: str, bins: np.ndarray, nbins: int):
        self.party = party
        self.bins = np.ascontiguousarray(bins, dtype=np.uint8)
        self.nbins = nbins
        self.per_feature = np.array([int(b.max()) + 1 if b.size else 1 for b in self.bins])
        self.per_feature = np.minimum(self.per_feature, nbins)  # the NaN bin never splits
        self.records: list[tuple[int, int]] = []
        self._hist: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._ids: dict[int, np.ndarray] = {}

    def n_features(self) -> int:
        return int(self.bins.shape[0])

    async def begin_tree(self, g: np.ndarray, h: np.ndarray, sample: np.ndarray,
                         features: np.ndarray | None) -> None:
        self._g, self._h, self._sample = g, h, sample
        self._features = features
        self._hist.clear()

    def _direct(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nf, width = self.bins.shape[0], self.nbins + 1
        idx = (self.bins[:, rows].astype(np.int64) + (np.arange(nf) * width)[:, None]).ravel()
        hg = np.bincount(idx, np.tile(self._g[rows], nf), nf * width).reshape(nf, width)
        hh = np.bincount(idx, np.tile(self._h[rows], nf), nf * width).reshape(nf, width)
        return hg, hh

    async def candidates(self, assign: np.ndarray, plans: list[NodePlan]
                         ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for plan in plans:
            if plan.direct:
                hist = self._direct(np.nonzero((assign == plan.node) & self._sample)[0])
            else:
                pg, ph = self._hist[plan.parent]
                sg, sh = self._hist[plan.sibling]
                hist = (pg - sg, ph - sh)
            self._hist[plan.node] = hist
            gl, hl, ids = cumulative_candidates(hist[0], hist[1], self.per_feature)
            if self._features is not None:
                keep = np.isin(ids[:, 0], self._features)
                gl, hl, ids = gl[keep], hl[keep], ids[keep]
            self._ids[plan.node] = ids
            out[plan.node] = (gl, hl)
        return out

    async def split(self, assign: np.ndarray, chosen: dict[int, int]
                    ) -> dict[int, tuple[np.ndarray, int]]:
        out = {}
        for node, cand in chosen.items():
            f, b = (int(v) for v in self._ids[node][cand])
            rows = np.nonzero(assign == node)[0]
            self.records.append((f, b))
            out[node] = (self.bins[f, rows] <= b, len(self.records) - 1)
        return out

    async def end_tree(self) -> None:
        self._hist.clear()
        self._ids.clear()


@dataclass
class Boosted:
    """What the bank learns and keeps: trees, base margin, per-party importance."""

    base: float
    objective: str
    learning_rate: float
    trees: list[Tree] = field(default_factory=list)
    history: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "objective": self.objective,
                "learning_rate": self.learning_rate, "history": self.history,
                "trees": [t.to_dict() for t in self.trees]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Boosted:
        return cls(d["base"], d["objective"], d["learning_rate"],
                   [Tree.from_dict(t) for t in d["trees"]], list(d.get("history", [])))

    def importance(self) -> dict[str, dict[int, dict[str, float]]]:
        """Per party, per record id: summed gain and split count (partners map ids to names)."""
        out: dict[str, dict[int, dict[str, float]]] = {}
        for t in self.trees:
            for owner, rec, gain in zip(t.owner, t.split, t.gain, strict=True):
                if owner:
                    e = out.setdefault(owner, {}).setdefault(rec, {"gain": 0.0, "splits": 0})
                    e["gain"] += gain
                    e["splits"] += 1
        return out


async def grow_tree(sources: list[CandidateSource], g: np.ndarray, h: np.ndarray,
                    sample: np.ndarray, p: BoostParams) -> tuple[Tree, np.ndarray]:
    """One tree: returns it and the leaf (node id) of every row."""
    n = g.shape[0]
    tree = Tree()
    tree.add()
    assign = np.zeros(n, dtype=np.int32)
    sums = {0: (float(g[sample].sum()), float(h[sample].sum()))}
    plans = [NodePlan(0)]
    for _depth in range(p.depth):
        if not plans:
            break
        cands = await asyncio.gather(*(s.candidates(assign, plans) for s in sources))
        chosen: list[dict[int, int]] = [{} for _ in sources]
        for plan in plans:
            best = _best_split(cands, plan.node, sums[plan.node], p)
            if best is not None:
                si, ci, gain, left = best
                chosen[si][plan.node] = ci
                tree.gain[plan.node] = gain
                sums[-plan.node - 1] = left  # left child's sums, keyed until ids exist
        masks = await asyncio.gather(*(s.split(assign, c)
                                       for s, c in zip(sources, chosen, strict=True)))
        plans = _apply_splits(tree, sources, masks, assign, sample, sums)
    for s in sources:
        await s.end_tree()
    leaves = np.nonzero(np.array(tree.left) < 0)[0]
    gsum = np.bincount(assign[sample], g[sample], len(tree.left))
    hsum = np.bincount(assign[sample], h[sample], len(tree.left))
    for leaf in leaves:
        tree.value[leaf] = float(-gsum[leaf] / (hsum[leaf] + p.l2) * p.learning_rate)
    return tree, assign


def _best_split(cands: list[dict[int, tuple[np.ndarray, np.ndarray]]], node: int,
                gh: tuple[float, float], p: BoostParams
                ) -> tuple[int, int, float, tuple[float, float]] | None:
    best: tuple[int, int, float, tuple[float, float]] | None = None
    for si, per_node in enumerate(cands):
        gl, hl = per_node[node]
        if gl.size == 0:
            continue
        gains = split_gains(gl, hl, gh[0], gh[1], p)
        ci = int(np.argmax(gains))
        if gains[ci] > 1e-6 and (best is None or gains[ci] > best[2]):
            best = (si, ci, float(gains[ci]), (float(gl[ci]), float(hl[ci])))
    return best


def _apply_splits(tree: Tree, sources: list[CandidateSource],
                  masks: list[dict[int, tuple[np.ndarray, int]]], assign: np.ndarray,
                  sample: np.ndarray, sums: dict[int, tuple[float, float]]) -> list[NodePlan]:
    plans = []
    for si, per_node in enumerate(masks):
        for node, (left_mask, record) in per_node.items():
            rows = np.nonzero(assign == node)[0]
            left, right = tree.add(), tree.add()
            tree.left[node], tree.right[node] = left, right
            tree.owner[node], tree.split[node] = sources[si].party, record
            assign[rows[left_mask]] = left
            assign[rows[~left_mask]] = right
            gl, hl = sums.pop(-node - 1)
            g, h = sums[node]
            sums[left], sums[right] = (gl, hl), (g - gl, h - hl)
            n_left = int(np.count_nonzero(sample[rows[left_mask]]))
            n_right = int(np.count_nonzero(sample[rows[~left_mask]]))
            small, big = (left, right) if n_left <= n_right else (right, left)
            plans += [NodePlan(small), NodePlan(big, parent=node, sibling=small)]
    return plans


def tree_leaves(tree: Tree, go_left: dict[tuple[str, int], np.ndarray], n: int) -> np.ndarray:
    """Leaf id per row, from each split's left-mask over all rows."""
    node = np.zeros(n, dtype=np.int64)
    left, right = np.array(tree.left), np.array(tree.right)
    for _ in range(len(tree.left)):
        internal = left[node] >= 0
        if not internal.any():
            break
        for nid in np.unique(node[internal]):
            rows = np.nonzero(node == nid)[0]
            mask = go_left[(tree.owner[nid], tree.split[nid])][rows]
            node[rows] = np.where(mask, left[nid], right[nid])
    return node


def sample_rows(g: np.ndarray, h: np.ndarray, train: np.ndarray, p: BoostParams
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This tree's histogram rows (mask) and (g, h), GOSS-amplified when enabled."""
    sample = train.copy()
    if p.goss is not None:
        a, b = p.goss
        idx = np.nonzero(train)[0]
        order = np.argsort(-np.abs(g[idx]), kind="stable")
        top = idx[order[: int(a * idx.size)]]
        rest = idx[order[int(a * idx.size):]]
        picked = rest[random_uniform(rest.size) < b / max(1e-12, 1 - a)]
        sample[:] = False
        sample[top] = sample[picked] = True
        factor = (1 - a) / b
        g, h = g.copy(), h.copy()
        g[picked] *= factor
        h[picked] *= factor
    elif p.subsample < 1:
        sample &= random_uniform(g.shape[0]) < p.subsample
    return sample, g, h


def choose_features(total: int, p: BoostParams) -> np.ndarray | None:
    """Column subsample for one tree (None: all)."""
    if p.colsample >= 1:
        return None
    k = max(1, int(round(p.colsample * total)))
    return np.sort(random_permutation(total)[:k])


def validation_split(n: int, p: BoostParams) -> np.ndarray:
    """Mask of training rows (the rest is the validation split)."""
    train = np.ones(n, dtype=bool)
    if p.validation > 0:
        train[random_permutation(n)[: int(p.validation * n)]] = False
    return train


def objective_of(p: BoostParams) -> Any:
    return OBJECTIVES[p.objective]()


async def train_reference(xs: list[np.ndarray], y: np.ndarray, p: BoostParams,
                          parties: list[str] | None = None) -> tuple[Boosted, np.ndarray]:
    """The same algorithm with every party's features in the clear (tests, XGBoost checks).

    Returns the model and the training margins. No sampling randomness is shared
    with a federated run, so compare them with subsample = colsample = 1, no GOSS.
    """
    from meshmpc.ml.boost_core import bin_matrix

    names = parties or [f"p{i}" for i in range(len(xs))]
    sources: list[Any] = [LocalSource(nm, bin_matrix(x, p.bins)[0], p.bins)
                          for nm, x in zip(names, xs, strict=True)]
    obj = objective_of(p)
    n = y.shape[0]
    train = np.ones(n, dtype=bool)
    model = Boosted(obj.base(y), p.objective, p.learning_rate)
    margin = np.full(n, model.base)
    for _t in range(p.trees):
        g, h = obj.grad_hess(margin, y)
        for s in sources:
            await s.begin_tree(g, h, train, None)
        tree, leaves = await grow_tree(sources, g, h, train, p)
        model.trees.append(tree)
        margin += np.array(tree.value)[leaves]
    return model, margin
