"""Vertical logistic regression on secret shares (N parties, features split by column).

Each party holds its own columns of the aligned rows in plaintext; the label
holder (the bank) also holds the labels. Training is mini-batch (or
full-batch) gradient descent with heavy-ball momentum, L2 and optional class
weights, all on shares:

    z = sum_owners X_o[batch] @ <w_o> + <b>          (OwnerProduct.matvec)
    p = sigmoid(<z>)                                   (poly8 on shares by default)
    r = (p - y) * class_weight(y)                     (bank's per-row weights, shared)
    g_o = X_o[batch]^T @ <r> / m + l2 / n * <c_o> * <w_o>   (OwnerProduct.rmatvec)
    v = momentum * v + g;  w = w - rate_t * v

The model works on standardised columns x / s; ``c_o = 1 / s^2`` (input by each
owner, shared) makes the penalty the one on the original columns' weights, so the
objective is scikit-learn's ``LogisticRegression(C=1/l2)`` exactly. ``rate_t`` is
the learning rate times the curvature factor (:mod:`meshmpc.ml.curvature`, one
announced scalar per owner) on a cosine schedule over all steps.

What is revealed: nothing during training (no gradient, residual or
prediction is opened) except, with ``validation > 0``, one scalar per epoch to
the bank: the validation Brier score mean((p - y)^2) of the current weights,
from which the bank decides to stop; every party then learns whether training
stopped (so the epoch count is public). At the end each owner learns its own
weights and the bank the intercept; with ``strict`` every weight stays
secret-shared (the model files hold shares) and scoring is joint only. The
bank finally learns the linear scores z of every aligned row (the model's
output, needed for evaluation). Security model: that of the suite (see
:mod:`meshmpc.ml.vertical`); details and costs in protocols/vertical-lr.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshmpc.linalg import SecretTensor, SecureBackend, concatenate
from meshmpc.ml import curvature
from meshmpc.ml.coded import CodedMatrix
from meshmpc.ml.predict import sum_to
from meshmpc.ml.vertical import VerticalError, VerticalSession, share_words

SIGMOIDS = ("poly8", "exp", "taylor1")
SCHEDULES = ("cosine", "inverse")
PENALTY_CAP = 2.0 ** 16
"""Largest per-column penalty weight 1 / std^2 (columns with std below 2^-8 get at most
this one): keeps w * c inside the fixed-point range."""
ROLE_TRAIN, ROLE_VALID, ROLE_TEST = 0, 1, 2


@dataclass(frozen=True)
class LogisticConfig:
    """Hyper-parameters (all public to the step's parties)."""

    epochs: int = 10
    batch_size: int | None = None
    """Rows per step; 0 = full batch; None = n_train / 32 within [64, 8192]."""
    learning_rate: float = 0.5
    momentum: float = 0.9
    decay: float = 2.0
    """With ``schedule: inverse``: learning rate of epoch e is learning_rate / (1 + decay * e)."""
    schedule: str = "cosine"
    """"cosine": step t of T = epochs x batches uses learning_rate (1 + cos(pi t / T)) / 2;
    "inverse": per epoch, see ``decay``."""
    average: bool = True
    """Use the mean of each epoch's iterates (tail averaging: damps mini-batch noise)."""
    l2: float = 1.0
    """L2 penalty on the summed log-loss (scikit-learn's 1 / C)."""
    class_weight: str | Mapping[int, float] | None = None
    """None, "balanced", or {0: w0, 1: w1}."""
    patience: int = 2
    tol: float = 1e-4
    """Minimum fall of the validation Brier score that counts as progress (well above the
    2^-16 fixed-point resolution of the revealed score, so ties do not flip decisions)."""
    sigmoid: str = "poly8"
    strict: bool = False
    seed: int = 0
    """Public seed of the batch order (not a secret: any party may know it)."""
    curvature: bool = True
    """Scale the learning rate by min(1, 2.5 / L), L a bound on the Hessian from each
    owner's announced top eigenvalue (:mod:`meshmpc.ml.curvature`): wide, correlated
    features (10^5 x 1,000 WOE) otherwise diverge at learning_rate 0.5."""
    exact_l2: bool = True
    """Penalise the weights of the original columns (scikit-learn's objective), not those
    of the standardised ones (each owner inputs 1 / std^2 of its columns, shared)."""

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise VerticalError(f"ml.logistic: epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 0:
            raise VerticalError("ml.logistic: batch_size must be 0 (full batch) or positive")
        if self.schedule not in SCHEDULES:
            raise VerticalError(f"ml.logistic: schedule must be one of {SCHEDULES}")
        if self.sigmoid not in SIGMOIDS:
            raise VerticalError(f"ml.logistic: sigmoid must be one of {SIGMOIDS}")
        if self.learning_rate <= 0 or not 0 <= self.momentum < 1 or self.l2 < 0:
            raise VerticalError("ml.logistic: need learning_rate > 0, 0 <= momentum < 1, l2 >= 0")


@dataclass
class Layout:
    """The public row layout: training rows (shuffled), validation rows, test rows."""

    order: np.ndarray
    n_train: int
    n_valid: int

    @property
    def n(self) -> int:
        return int(self.order.size)

    def batches(self, batch_size: int | None) -> list[slice]:
        if batch_size is None:
            batch_size = int(min(8192, max(64, self.n_train // 32)))
        size = batch_size or self.n_train
        return [slice(lo, min(lo + size, self.n_train)) for lo in range(0, self.n_train, size)]

    @property
    def valid(self) -> slice:
        return slice(self.n_train, self.n_train + self.n_valid)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fixed public hash of row numbers (not randomness)."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_roles(n: int, test: float, validation: float, seed: int = 0) -> np.ndarray:
    """Role of every aligned row (0 train, 1 validation, 2 test), the same on every party.

    A public hash of (seed, row) decides: the split is no secret, only a
    deterministic agreement that needs no message.
    """
    if not 0 <= test < 1 or not 0 <= validation < 1 or test + validation >= 1:
        raise VerticalError("ml.logistic: need 0 <= test, validation and test + validation < 1")
    with np.errstate(over="ignore"):
        u = _mix(np.arange(n, dtype=np.uint64) ^ _mix(np.asarray([seed], dtype=np.uint64)))
    share = (u >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    roles = np.full(n, ROLE_TRAIN, dtype=np.int8)
    roles[share < test] = ROLE_TEST
    roles[(share >= test) & (share < test + validation)] = ROLE_VALID
    return roles


def feature_scale(x: np.ndarray | CodedMatrix) -> np.ndarray:
    """Per-column standard deviation (1 for constant columns), computed by the owner alone."""
    if x.shape[0] == 0:
        return np.ones(x.shape[1])
    std = x.column_std() if isinstance(x, CodedMatrix) else x.std(axis=0)
    return np.where(std > 1e-12, std, 1.0)


def laid_out(x: np.ndarray | CodedMatrix, order: np.ndarray,
             scale: np.ndarray) -> np.ndarray | CodedMatrix:
    """x's rows in layout order, columns divided by ``scale``: a CodedMatrix stays coded
    (its codes permuted once, 1 byte a cell), an array becomes a float64 copy."""
    if isinstance(x, CodedMatrix):
        return x[order].scaled(scale)
    return np.ascontiguousarray(x[order] / scale, dtype=np.float64)


def make_layout(roles: np.ndarray, seed: int = 0) -> Layout:
    train = np.flatnonzero(roles == ROLE_TRAIN)
    with np.errstate(over="ignore"):
        train = train[np.argsort(_mix(train.astype(np.uint64) + np.uint64(seed + 1)),
                                 kind="stable")]
    valid = np.flatnonzero(roles == ROLE_VALID)
    test = np.flatnonzero(roles == ROLE_TEST)
    if train.size == 0:
        raise VerticalError("ml.logistic: no training rows left after the split")
    return Layout(np.concatenate([train, valid, test]), int(train.size), int(valid.size))


def step_rate(config: LogisticConfig, factor: float, epoch: int, step: int,
              steps_per_epoch: int) -> float:
    """The public learning rate of ``step`` (0-based, within ``epoch``): the same on every
    party and in :func:`plaintext_reference`."""
    base = factor * config.learning_rate
    if config.schedule == "inverse":
        return base / (1.0 + config.decay * epoch)
    done = epoch * steps_per_epoch + step
    return base * 0.5 * (1.0 + math.cos(math.pi * done / (config.epochs * steps_per_epoch)))


def penalty_weights(scale: np.ndarray, config: LogisticConfig, n_train: int = 1,
                    factor: float = 1.0) -> np.ndarray:
    """Per-column L2 weights on the standardised weights: 1 / scale^2 with ``exact_l2``,
    so sum c w'^2 = sum w^2 of the original columns; else ones.

    The penalty adds l2 c / n_train to the Hessian's diagonal, which the curvature
    bound does not cover: c is capped so that the largest rate times it stays at most
    1 (heavy ball at momentum 0.9 is stable below 3.8 in all, the loss part taking at
    most 2.5), and at PENALTY_CAP. The cap is computed from public numbers only; it
    binds for columns with std below sqrt(rate l2 / n_train) (7.6e-4 at 70,000 rows).
    """
    if not config.exact_l2:
        return np.ones_like(scale, dtype=np.float64)
    rate = factor * config.learning_rate
    cap = min(PENALTY_CAP, n_train / (config.l2 * rate)) if config.l2 else PENALTY_CAP
    return np.minimum(1.0 / np.square(np.asarray(scale, dtype=np.float64)), max(cap, 1.0))


async def mul_small(t: SecretTensor, c: float) -> SecretTensor:
    """t * c for a public c of any magnitude, keeping 2^-f relative precision of c.

    c is written as (c 2^k) 2^-k with c 2^k in [0.5, 1); the product at scale
    2f is truncated once by f + k bits. Needs |t| < 2^(62 - 2f).
    """
    if c == 0:
        return await (t * 0.0)
    if abs(c) >= 2 ** -4:
        return await (t * c)
    backend = t.backend
    k = -int(math.floor(math.log2(abs(c)))) - 1
    f = backend.f
    base = t.rescale(f)
    encoded = backend.ring.broadcast_to(backend.encode(np.asarray(c * 2.0**k), f), base.shape)
    product = backend.suite.mul_public(base.share, encoded)
    return SecretTensor(backend, await backend.suite.trunc(product, f + k), f)


@dataclass
class LogisticResult:
    """What one party takes away from training."""

    weights: np.ndarray | None = None
    """This owner's weights (None in strict mode)."""
    intercept: float | None = None
    """At the bank (None elsewhere and in strict mode)."""
    shares: dict[str, Any] | None = None
    """Strict mode, compute parties: this party's share words of all weights."""
    scores_z: np.ndarray | None = None
    """At the bank: linear scores of every aligned row in the original row order."""
    feature_scale: np.ndarray | None = None
    """This owner's per-feature divisors (training-row std): the secure model works on
    x / scale, which conditions gradient descent; revealed weights are converted back."""
    history: list[float] = field(default_factory=list)
    epochs_run: int = 0
    stopped_early: bool = False


class _Trainer:
    """The compute parties' training loop over a registered layout."""

    def __init__(self, session: VerticalSession, widths: dict[str, int],
                 x: np.ndarray | CodedMatrix | None,
                 label_holder: str, layout: Layout, config: LogisticConfig) -> None:
        self.session = session
        self.backend: SecureBackend = session.require_backend()
        self.widths = widths
        self.x = x
        self.bank = label_holder
        self.layout = layout
        self.config = config
        self.owners = [p for p in widths if widths[p] > 0]
        offsets = np.cumsum([0] + [widths[p] for p in self.owners])
        self.slices = {p: slice(int(offsets[i]), int(offsets[i + 1]))
                       for i, p in enumerate(self.owners)}
        self.total = int(offsets[-1])
        self._slice_key: tuple[int, int] | None = None
        self._slice: SecretTensor | None = None
        self.penalty: SecretTensor | None = None
        """The owners' shared 1 / std^2 weights (``exact_l2``), in owner order."""

    def _rows_of(self, combined: SecretTensor, rows: slice) -> SecretTensor:
        """combined[rows], the same object for a step's forward and backward pass, so
        semi2k opens X[rows] - A once and reuses the mask for X[rows]^T."""
        key = (rows.start, rows.stop)
        if self._slice_key != key:
            self._slice_key, self._slice = key, combined[rows]
        assert self._slice is not None
        return self._slice

    async def z(self, w: SecretTensor, rows: slice) -> SecretTensor:
        combined = self.session.combined(self.owners)
        bias = w[self.total:].broadcast_to((rows.stop - rows.start,))
        if combined is not None:
            return await (self._rows_of(combined, rows) @ w[: self.total]) + bias
        parts = await self.session.products(
            self.x, rows, [(o, w[self.slices[o]], self.widths[o]) for o in self.owners], False)
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        return out + bias

    async def gradient(self, r: SecretTensor, rows: slice) -> SecretTensor:
        combined = self.session.combined(self.owners)
        if combined is not None:
            xb = self._rows_of(combined, rows)
            return concatenate([await (xb.T @ r), r.sum().reshape(1)])
        parts = await self.session.products(
            self.x, rows, [(o, r, self.widths[o]) for o in self.owners], True)
        return concatenate([*parts, r.sum().reshape(1)])

    async def residual(self, p: SecretTensor, labels: dict[str, SecretTensor],
                       rows: slice) -> SecretTensor:
        if "u" not in labels:
            return p - labels["y"][rows]
        return await (p * labels["u"][rows]) - labels["yu"][rows]

    async def step(self, w: SecretTensor, v: SecretTensor, labels: dict[str, SecretTensor],
                   rows: slice, rate: float) -> tuple[SecretTensor, SecretTensor]:
        m = rows.stop - rows.start
        p = await (await self.z(w, rows)).sigmoid(self.config.sigmoid)
        g = await self.gradient(await self.residual(p, labels, rows), rows)
        decay = self.config.l2 / self.layout.n_train
        penalty = None
        if decay:
            weighted = w[: self.total] if self.penalty is None \
                else await (w[: self.total] * self.penalty)
            penalty = await mul_small(weighted, decay)
        g_mean = await mul_small(g, 1.0 / m)
        if penalty is not None:
            g_mean = g_mean + concatenate([penalty, self.backend.constant(np.zeros(1))])
        v = (await (v * self.config.momentum)) + g_mean if self.config.momentum else g_mean
        return w - await (v * rate), v

    async def validation_brier(self, w: SecretTensor,
                               labels: dict[str, SecretTensor]) -> float | None:
        rows = self.layout.valid
        p = await (await self.z(w, rows)).sigmoid(self.config.sigmoid)
        d = p - labels["y"][rows]
        total = (await (d * d)).sum()
        value = await (await mul_small(total, 1.0 / self.layout.n_valid)).reveal(to=self.bank)
        return None if value is None else float(np.asarray(value).ravel()[0])


async def _labels(backend: SecureBackend, bank: str, y: np.ndarray | None, layout: Layout,
                  config: LogisticConfig) -> tuple[dict[str, SecretTensor], float]:
    """Shared labels (and class-weighted forms) in layout order; the prior log-odds."""
    n = layout.n
    me = backend.suite.ctx.party == bank
    ordered = y[layout.order] if me and y is not None else None
    labels = {"y": await backend.input(bank, ordered, shape=(n,))}
    prior = 0.0
    if me and ordered is not None:
        rate = float(np.clip(ordered[: layout.n_train].mean(), 1e-4, 1 - 1e-4))
        prior = math.log(rate / (1 - rate))
    if config.class_weight is not None:
        u = yu = None
        if me and ordered is not None:
            w0, w1 = _class_weights(ordered[: layout.n_train], config.class_weight)
            u = np.where(ordered == 1, w1, w0)
            yu = ordered * w1
        labels["u"] = await backend.input(bank, u, shape=(n,))
        labels["yu"] = await backend.input(bank, yu, shape=(n,))
    return labels, prior


def _class_weights(y: np.ndarray, spec: str | Mapping[Any, float]) -> tuple[float, float]:
    if spec == "balanced":
        bad = max(float(y.sum()), 1.0)
        good = max(float(y.size - y.sum()), 1.0)
        return y.size / (2 * good), y.size / (2 * bad)
    if isinstance(spec, Mapping):
        lookup = {str(k): float(v) for k, v in spec.items()}
        return lookup.get("0", 1.0), lookup.get("1", 1.0)
    raise VerticalError(f"ml.logistic: class_weight must be 'balanced' or {{0: w0, 1: w1}}, "
                        f"got {spec!r}")


async def _rate_factor(session: VerticalSession, laid: Any, layout: Layout,
                       config: LogisticConfig) -> float:
    """The common learning-rate factor (1 unless ``config.curvature``): every party
    announces its block's top eigenvalue; all compute the same factor."""
    if not config.curvature:
        return 1.0
    rows = min(layout.n_train, curvature.SAMPLE_ROWS)
    own = curvature.top_eigenvalue(laid[:rows]) if laid.shape[1] else 0.0
    ctx = session.ctx.scope("curvature")
    await ctx.broadcast("lambda", own)
    values = [own]
    for party, value in (await ctx.recv_all("lambda")).items():
        if not isinstance(value, float) or not 0.0 <= value <= 1e7:
            raise VerticalError(f"party {party} announced an invalid eigenvalue {value!r}")
        values.append(value)
    return curvature.rate_factor(sorted(values))


async def _share_penalty(session: VerticalSession, widths: dict[str, int], scale: np.ndarray,
                         config: LogisticConfig, n_train: int,
                         factor: float) -> SecretTensor | None:
    """The owners' 1 / std^2 column weights, shared in owner order (``exact_l2``): private
    inputs like the features, nothing revealed. None without ``exact_l2`` or l2."""
    if not config.exact_l2 or not config.l2:
        return None
    parts = []
    for owner, width in widths.items():
        if width:
            mine = penalty_weights(scale, config, n_train, factor) \
                if owner == session.ctx.party else None
            part = await session.share_vector(owner, mine, width)
            if part is not None:
                parts.append(part)
    return concatenate(parts) if session.computes and parts else None


async def exchange_widths(session: VerticalSession, width: int) -> dict[str, int]:
    """Every party's feature count (public), in cluster order."""
    ctx = session.ctx.scope("widths")
    await ctx.broadcast("w", int(width))
    got = await ctx.recv_all("w")
    widths = {session.ctx.party: int(width)}
    for party, value in got.items():
        if not isinstance(value, int) or not 0 <= value <= 1_000_000:
            raise VerticalError(f"party {party} announced an invalid feature count {value!r}")
        widths[party] = value
    return {p: widths[p] for p in session.ctx.parties}


async def train(session: VerticalSession, x: np.ndarray | CodedMatrix, y: np.ndarray | None,
                label_holder: str, roles: np.ndarray, config: LogisticConfig) -> LogisticResult:
    """One party's side of training; ``x`` is its n x d matrix of the aligned rows (an
    array, or a :class:`~meshmpc.ml.coded.CodedMatrix` of WOE codes: 1 byte a cell)."""
    widths = await exchange_widths(session, x.shape[1])
    layout = make_layout(roles, config.seed)
    scale = feature_scale(x[roles == ROLE_TRAIN])
    laid = laid_out(x, layout.order, scale)
    factor = await _rate_factor(session, laid, layout, config)
    penalty = await _share_penalty(session, widths, scale, config, layout.n_train, factor)
    for owner, width in widths.items():
        if width:
            mine = laid if owner == session.ctx.party else None
            await session.register(owner, mine, (layout.n, width), stream=True)
    result = LogisticResult(feature_scale=scale)
    trained = None
    if session.computes:
        trained = await _train_compute(session, widths, laid, y, label_holder, layout, config,
                                       result, factor, penalty)
        await session.release_providers()
    else:
        await session.serve_providers()
    if not config.strict:
        await _reveal_weights(session, widths, label_holder, trained, result)
        if result.weights is not None and result.weights.size:
            result.weights = result.weights / scale
        partial = x @ result.weights if result.weights is not None and result.weights.size \
            else np.zeros(x.shape[0])
        if result.intercept is not None:
            partial = partial + result.intercept
        result.scores_z = await sum_to(session.ctx.scope("scores"), label_holder, partial)
    return result


async def _train_compute(session: VerticalSession, widths: dict[str, int],
                         laid: np.ndarray | CodedMatrix,
                         y: np.ndarray | None, bank: str, layout: Layout,
                         config: LogisticConfig, result: LogisticResult,
                         factor: float = 1.0, penalty: SecretTensor | None = None
                         ) -> SecretTensor:
    """The training loop; returns the shared weights (intercept last) kept at the best epoch."""
    trainer = _Trainer(session, widths, laid, bank, layout, config)
    trainer.penalty = penalty
    backend = trainer.backend
    labels, prior = await _labels(backend, bank, y, layout, config)
    init = np.zeros(trainer.total + 1)
    init[-1] = prior
    start = await backend.input(bank, init if session.ctx.party == bank else None,
                                shape=(trainer.total + 1,))
    w, v = start, backend.constant(np.zeros(trainer.total + 1))
    best, best_w, waited = math.inf, w, 0
    decide = session.ctx.subgroup(session.compute).scope("early-stop")
    for epoch in range(config.epochs):
        batches = layout.batches(config.batch_size)
        total = None
        for index, rows in enumerate(batches):
            rate = step_rate(config, factor, epoch, index, len(batches))
            w, v = await trainer.step(w, v, labels, rows, rate)
            total = w if total is None else total + w
        assert total is not None
        current = await mul_small(total, 1.0 / len(batches)) \
            if config.average and len(batches) > 1 else w
        result.epochs_run = epoch + 1
        if not layout.n_valid:
            best_w = current
            continue
        score = await trainer.validation_brier(current, labels)
        stop = False
        if session.ctx.party == bank and score is not None:
            result.history.append(round(score, 6))
            if score < best - config.tol:
                best, waited = score, 0
            else:
                waited += 1
            stop = waited >= config.patience
            await decide.broadcast(f"stop/{epoch}", {"stop": stop, "keep": waited == 0})
            keep = waited == 0
        else:
            verdict = await decide.recv(bank, f"stop/{epoch}")
            stop, keep = bool(verdict["stop"]), bool(verdict["keep"])
        if keep:
            best_w = current
        if stop:
            result.stopped_early = epoch + 1 < config.epochs
            break
    if config.strict:
        result.shares = {"words": share_words(best_w), "scale": best_w.scale,
                         "suite": backend.suite.name, "compute": session.compute,
                         "widths": widths}
        z_all = await trainer.z(best_w, slice(0, layout.n))
        opened = await z_all.reveal(to=bank)
        if opened is not None:
            result.scores_z = _unlay(np.asarray(opened), layout)
    return best_w


def _unlay(values: np.ndarray, layout: Layout) -> np.ndarray:
    out = np.empty_like(values)
    out[layout.order] = values
    return out


async def _reveal_weights(session: VerticalSession, widths: dict[str, int], bank: str,
                          w: SecretTensor | None, result: LogisticResult) -> None:
    """Each owner learns its own weights, the bank the intercept."""
    owners = [p for p in widths if widths[p] > 0]
    offsets = np.cumsum([0] + [widths[p] for p in owners])
    for i, owner in enumerate(owners):
        part = w[int(offsets[i]): int(offsets[i + 1])] if w is not None else None
        opened = await session.reveal_to(part, owner, (widths[owner],))
        if opened is not None:
            result.weights = np.asarray(opened, dtype=np.float64)
    bias = w[int(offsets[-1]):] if w is not None else None
    opened = await session.reveal_to(bias, bank, (1,))
    if opened is not None:
        result.intercept = float(np.asarray(opened).ravel()[0])
    if result.weights is None and widths.get(session.ctx.party, 0) == 0:
        result.weights = np.zeros(0)


def plaintext_reference(x: np.ndarray | CodedMatrix, y: np.ndarray, roles: np.ndarray,
                        config: LogisticConfig, widths: Sequence[int] | None = None
                        ) -> tuple[np.ndarray, float, int, list[float]]:
    """The same algorithm on pooled plaintext (exact sigmoid): weights, intercept, epochs
    and the validation Brier score of every epoch. ``widths``: the owners' column counts
    in x's order (needed with ``config.curvature``, the default: each owner's block gives
    its eigenvalue). ``x`` may be a CodedMatrix (decoded a batch at a time).

    Not private: a yardstick for the tests and the benchmark.
    """
    layout = make_layout(roles, config.seed)
    scale = feature_scale(x[roles == ROLE_TRAIN])
    xs, ys = laid_out(x, layout.order, scale), y[layout.order].astype(np.float64)
    d = x.shape[1]
    rate = float(np.clip(ys[: layout.n_train].mean(), 1e-4, 1 - 1e-4))
    w = np.zeros(d + 1)
    w[-1] = math.log(rate / (1 - rate))
    v = np.zeros(d + 1)
    w0, w1 = _class_weights(ys[: layout.n_train], config.class_weight) \
        if config.class_weight is not None else (1.0, 1.0)
    best, best_w, waited, epochs = math.inf, w.copy(), 0, 0
    history: list[float] = []
    factor = 1.0
    if config.curvature:
        if widths is None:
            raise VerticalError("plaintext_reference: curvature needs the owners' column "
                                "counts (widths), as each owner announces its own bound")
        sample = min(layout.n_train, curvature.SAMPLE_ROWS)
        factor = curvature.rate_factor(sorted(curvature.block_eigenvalues(
            xs, list(widths), sample)))
    penalty = config.l2 / layout.n_train * penalty_weights(scale, config, layout.n_train,
                                                            factor)
    for epoch in range(config.epochs):
        batches = layout.batches(config.batch_size)
        total = np.zeros(d + 1)
        for index, rows in enumerate(batches):
            rate = step_rate(config, factor, epoch, index, len(batches))
            xb, yb = np.asarray(xs[rows]), ys[rows]
            p = 1 / (1 + np.exp(-(xb @ w[:d] + w[d])))
            r = (p - yb) * np.where(yb == 1, w1, w0)
            g = np.r_[xb.T @ r, r.sum()] / (rows.stop - rows.start)
            g[:d] += penalty * w[:d]
            v = config.momentum * v + g
            w = w - rate * v
            total += w
        current = total / len(batches) if config.average else w
        epochs += 1
        if not layout.n_valid:
            best_w = current.copy()
            continue
        vr = layout.valid
        pv = 1 / (1 + np.exp(-(np.asarray(xs[vr]) @ current[:d] + current[d])))
        score = float(np.mean((pv - ys[vr]) ** 2))
        history.append(score)
        if score < best - config.tol:
            best, best_w, waited = score, current.copy(), 0
        else:
            waited += 1
        if waited >= config.patience:
            break
    return best_w[:d] / scale, float(best_w[d]), epochs, history
