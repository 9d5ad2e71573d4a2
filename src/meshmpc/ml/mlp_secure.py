"""The vertical MLP trained on secret shares (rep3 honest majority, semi2k dishonest majority).

Per mini-batch of m rows (M = batch_size; all tensors secret-shared among the
compute parties of the :class:`~meshmpc.ml.vertical.VerticalSession`):

    h1 = sum_o X_o[rows] @ <W1_o> + <b1>          owner-matrix product (features stay put)
    d_k = 1 - msb(h_k);  a_k = d_k * h_k          one comparison gives ReLU and ReLU'
    h_{k+1} = a_k @ <W_{k+1}> + <b_{k+1}>          shared x shared
    p = sigmoid(a_L @ <W_out> + <b_out>);  delta = p - y     (cross-entropy gradient)
    back: G_out = a_L^T delta;  delta_k = d_k * (delta_{k+1} @ W_{k+1}^T);  G_k = a_{k-1}^T delta_k
    G1_o = X_o[rows]^T @ delta_1                    owner-matrix product (transposed)

then the update of :mod:`meshmpc.ml.mlp` on the flat parameter vector. Nothing
is opened during training except, with a validation split, one scalar per
epoch to the label holder (the validation Brier score, as in ml.logistic) and
the stop decision every party then learns. At the end the label holder learns
the output logit z of every aligned row; with ``reveal="first-layer"`` each
owner learns its own block W1_o; every other weight stays shared (the model
files of the compute parties hold share words). Security model: the suite's
(semi-honest; rep3: one corruption of three; semi2k: any but one). Costs per
layer in protocols/mlp.md.

Two compute parties (dishonest majority): an input provider's first-layer
products run with the provider as the plain side of packed BFV products
(:mod:`meshmpc.ml.mlp_provider`; its matrix is never shared), and with
``triples: he`` the hidden dense products take no matrix triples
(:mod:`meshmpc.ml.mlp_dense`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshmpc.linalg import SecretTensor, SecureBackend, concatenate
from meshmpc.ml.logistic import Layout, exchange_widths, make_layout, mul_small
from meshmpc.ml.mlp import (
    MLPConfig,
    adam_factors,
    check_labels,
    init_contribution,
    layer_shapes,
    mlp_batches,
    one_hot,
    public_init_key,
    standardise_stats,
    step_scales,
)
from meshmpc.ml.mlp_dense import dense_for
from meshmpc.ml.mlp_provider import ProviderProducts, place, provider_product_applies, serve
from meshmpc.ml.mlp_relu import SharedBits, mux_for, relu_bits, times_mask
from meshmpc.ml.vertical import VerticalSession, share_words
from meshmpc.mpc.fixedpoint import FixedPoint
from meshmpc.mpc.prg import fresh_key

SCORE_BLOCK = 8192  # rows per block of the validation and final forward passes
Mask = SecretTensor | SharedBits
"""A ReLU derivative: an arithmetic 0/1 tensor, or XOR-shared bits (two-party semi2k)."""


async def relu_with_derivative(h: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
    """(ReLU(h), ReLU'(h)) from one secure comparison: d = [h >= 0] = 1 - msb(h), a = d * h.

    d has scale 0 (an integer bit), so d * h costs one product and no truncation: both
    outputs are exact (the derivative at 0 is taken as 1).
    """
    d = (await h.msb()).neg() + 1
    return await (d * h), d


@dataclass
class ParamLayout:
    """Where each layer's weights and biases sit in the flat parameter vector.

    Weights first (W1 rows in owner order, then W2 ... W_out, row-major), biases after,
    so the L2 penalty touches the prefix only."""

    shapes: list[tuple[int, int]]

    @property
    def n_weights(self) -> int:
        return int(sum(a * b for a, b in self.shapes))

    @property
    def size(self) -> int:
        return self.n_weights + int(sum(b for _, b in self.shapes))

    def weight(self, theta: SecretTensor, k: int) -> SecretTensor:
        lo = int(sum(a * b for a, b in self.shapes[:k]))
        a, b = self.shapes[k]
        return theta[lo: lo + a * b].reshape(a, b)

    def bias(self, theta: SecretTensor, k: int) -> SecretTensor:
        lo = self.n_weights + int(sum(b for _, b in self.shapes[:k]))
        return theta[lo: lo + self.shapes[k][1]]


@dataclass
class MLPResult:
    """What one party takes away from training."""

    shares: dict[str, Any] | None = None
    """Compute parties: this party's share words of the flat parameter vector."""
    first_layer: np.ndarray | None = None
    """reveal="first-layer": this owner's block W1_o (its width x layers[0])."""
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    """This owner's standardisation (training rows): the network sees (x - mean) / scale."""
    widths: dict[str, int] = field(default_factory=dict)
    scores_z: np.ndarray | None = None
    """At the label holder: the output logit of every aligned row, original order."""
    history: list[float] = field(default_factory=list)
    epochs_run: int = 0
    stopped_early: bool = False


class MLPNetwork:
    """Forward and backward passes of the network over one party's session."""

    def __init__(self, session: VerticalSession, widths: dict[str, int],
                 x: np.ndarray | None, config: MLPConfig) -> None:
        self.session = session
        self.backend: SecureBackend = session.require_backend()
        self.widths = widths
        self.x = x
        self.config = config
        self.owners = [p for p in widths if widths[p] > 0]
        offsets = np.cumsum([0] + [widths[p] for p in self.owners])
        self.slices = {p: slice(int(offsets[i]), int(offsets[i + 1]))
                       for i, p in enumerate(self.owners)}
        self.params = ParamLayout(layer_shapes(int(offsets[-1]), config.layers,
                                               config.outputs))
        self.mux = mux_for(self.backend)
        self.dense = dense_for(self.backend)
        """Two-party semi2k with HE: dense products without triples (ml/mlp_dense.py)."""
        self.remote: ProviderProducts | None = None
        """Two compute parties: the input providers' products (ml/mlp_provider.py)."""
        self._cached_rows: tuple[int, int] | None = None
        self._cached: np.ndarray | None = None

    def _block(self, owner: str, rows: slice) -> np.ndarray | None:
        """This owner's rows of the batch, one object per batch: the rep3 product splits a
        matrix once per object, so the forward and backward passes share one split."""
        if self.x is None or self.session.ctx.party != owner:
            return None
        if self._cached_rows != (rows.start, rows.stop):
            self._cached_rows = (rows.start, rows.stop)
            self._cached = np.ascontiguousarray(self.x[rows])
        return self._cached

    async def matmul(self, x: SecretTensor, v: SecretTensor) -> SecretTensor:
        """x @ v for the hidden layers (v the weight or delta): the direct HE product in
        two-party semi2k with HE, else the suite's (triples)."""
        if self.dense is not None:
            return await self.dense.matmul(x, v)
        return await (x @ v)

    def _is_remote(self, owner: str) -> bool:
        return self.remote is not None and owner in self.remote.providers

    async def first_layer(self, theta: SecretTensor, rows: slice) -> SecretTensor:
        """sum_o X_o[rows] W1_o + b1: the providers' requests go out first, so they compute
        while the owners' products run; their results are summed before one lift."""
        w1 = self.params.weight(theta, 0)
        m = rows.stop - rows.start
        pending = []
        if self.remote is not None:
            pending = [await self.remote.request(o, w1[self.slices[o]], rows, self.widths[o],
                                                 False)
                       for o in self.owners if self._is_remote(o)]
        out = None
        for owner in self.owners:
            if self._is_remote(owner):
                continue
            part = await self._owner_product(owner, rows, w1[self.slices[owner]], False)
            out = part if out is None else out + part
        if pending:
            assert self.remote is not None
            (summed,) = await self.remote.collect(pending, summed=True)
            out = summed if out is None else out + summed
        assert out is not None
        return out + self.params.bias(theta, 0).reshape(1, -1).broadcast_to(
            (m, self.config.layers[0]))

    async def first_layer_gradient(self, delta: SecretTensor, rows: slice) -> SecretTensor:
        """X_o[rows]^T delta_1 for every owner, stacked in owner order."""
        remote = [o for o in self.owners if self._is_remote(o)]
        pending = []
        if self.remote is not None:
            pending = [await self.remote.request(o, delta, rows, self.widths[o], True)
                       for o in remote]
        parts = {o: await self._owner_product(o, rows, delta, True)
                 for o in self.owners if o not in remote}
        if pending:
            assert self.remote is not None
            parts.update(zip(remote, await self.remote.collect(pending, summed=False),
                             strict=True))
        return place(parts, self.owners)

    async def _owner_product(self, owner: str, rows: slice, v: SecretTensor,
                             transpose: bool) -> SecretTensor:
        session = self.session
        if session.uses_product(owner):
            assert session.product is not None
            shape = (rows.stop - rows.start, self.widths[owner])
            block = self._block(owner, rows)
            if transpose:
                return await session.product.rmatvec(owner, block, v, shape)
            return await session.product.matvec(owner, block, v, shape)
        shared = session.shared_matrix(owner)[rows]
        return await (shared.T @ v) if transpose else await (shared @ v)

    async def relu(self, h: SecretTensor) -> tuple[SecretTensor, Mask]:
        """ReLU and its derivative: the multiplexer in two-party semi2k (ml/mlp_relu.py)."""
        if self.mux is not None:
            return await relu_bits(h, self.mux)
        return await relu_with_derivative(h)

    async def forward(self, theta: SecretTensor, rows: slice
                      ) -> tuple[list[SecretTensor], list[Mask], SecretTensor]:
        """Activations a_0.. (a_0 unused: the owners' rows), ReLU derivatives, logits (m x 1)."""
        h = await self.first_layer(theta, rows)
        acts: list[SecretTensor] = []
        masks: list[Mask] = []
        for k in range(1, len(self.params.shapes)):
            a, d = await self.relu(h)
            acts.append(a)
            masks.append(d)
            bias = self.params.bias(theta, k).reshape(1, -1).broadcast_to(
                (a.shape[0], self.params.shapes[k][1]))
            h = (await self.matmul(a, self.params.weight(theta, k))) + bias
        return acts, masks, h

    async def gradient(self, theta: SecretTensor, acts: list[SecretTensor],
                       masks: list[Mask], delta: SecretTensor,
                       rows: slice) -> SecretTensor:
        """The batch's summed gradient as a flat vector in :class:`ParamLayout` order."""
        count = len(self.params.shapes)
        gw: list[SecretTensor | None] = [None] * count
        gb: list[SecretTensor | None] = [None] * count
        for k in range(count - 1, 0, -1):
            gw[k] = await self.matmul(acts[k - 1].T, delta)
            gb[k] = delta.sum(axis=0)
            back = await self.matmul(delta, self.params.weight(theta, k).T)
            delta = await times_mask(masks[k - 1], back)
        gw[0] = await self.first_layer_gradient(delta, rows)
        gb[0] = delta.sum(axis=0)
        flat = [t.reshape(-1) for t in gw if t is not None]
        flat += [t.reshape(-1) for t in gb if t is not None]
        return concatenate(flat)

    async def logits(self, theta: SecretTensor, rows: slice) -> SecretTensor:
        """z of the rows, block by block (bounded memory): (n,) for a sigmoid output,
        (n, classes) for softmax."""
        parts = []
        for lo in range(rows.start, rows.stop, SCORE_BLOCK):
            block = slice(lo, min(lo + SCORE_BLOCK, rows.stop))
            _, _, z = await self.forward(theta, block)
            parts.append(z.reshape(-1) if self.config.outputs == 1 else z)
        return concatenate(parts) if len(parts) > 1 else parts[0]

    async def output_delta(self, z: SecretTensor, labels: SecretTensor) -> SecretTensor:
        """The cross-entropy gradient at the logits: sigmoid(z) - y or softmax(z) - Y."""
        if self.config.output == "softmax":
            return (await z.softmax(axis=1)) - labels
        return (await z.sigmoid(self.config.sigmoid)) - labels


class Optimizer:
    """SGD with momentum or Adam on the flat parameter vector (see meshmpc.ml.mlp)."""

    def __init__(self, backend: SecureBackend, params: ParamLayout, config: MLPConfig) -> None:
        self.backend = backend
        self.params = params
        self.config = config
        zeros = backend.constant(np.zeros(params.size))
        self.first, self.second = zeros, zeros
        self.t = 0

    async def _scaled(self, theta: SecretTensor, grad: SecretTensor, m: int) -> SecretTensor:
        up, _ = step_scales(self.config, m)
        if self.config.l2:
            nw = self.params.n_weights
            penalty = await mul_small(theta[:nw], self.config.l2)
            grad = grad + concatenate([penalty, self.backend.constant(
                np.zeros(self.params.size - nw))])
        return grad if up == 1.0 else await (grad * up)

    async def step(self, theta: SecretTensor, grad: SecretTensor, m: int) -> SecretTensor:
        g = await self._scaled(theta, grad, m)
        self.t += 1
        config = self.config
        if config.optimizer == "sgd":
            self.first = (await (self.first * config.momentum)) + g if config.momentum else g
            return theta - await mul_small(self.first, step_scales(config, m)[1])
        rate, unbias, eps = adam_factors(config, self.t)
        self.first = self.first + await (((g - self.first)) * (1 - config.beta1))
        square = await (g * g)
        self.second = self.second + await mul_small(square - self.second, 1 - config.beta2)
        root = await ((await (self.second * unbias)) + eps).rsqrt()
        return theta - await mul_small(await (self.first * root), rate)


async def initial_parameters(session: VerticalSession, params: ParamLayout,
                             config: MLPConfig) -> SecretTensor:
    """The flat parameter vector: every compute party's OS-seeded contribution, summed.

    No party learns the initial weights; biases start at zero. ``config.init_seed``
    (tests) replaces the OS keys by public ones so a float reference can match."""
    backend = session.require_backend()
    compute = session.compute
    theta = None
    for index, party in enumerate(compute):
        mine = None
        if party == session.ctx.party:
            key = fresh_key() if config.init_seed is None \
                else public_init_key(config.init_seed, index)
            blocks = init_contribution(key, params.shapes, len(compute))
            mine = np.concatenate([*(b.ravel() for b in blocks),
                                   np.zeros(params.size - params.n_weights)])
        part = await backend.input(party, mine, shape=(params.size,))
        theta = part if theta is None else theta + part
    assert theta is not None
    return theta


async def train(session: VerticalSession, x: np.ndarray, y: np.ndarray | None,
                label_holder: str, roles: np.ndarray, config: MLPConfig) -> MLPResult:
    """One party's side of training; ``x`` is its n x d matrix of the aligned rows."""
    if y is not None:
        check_labels(y, config, session.ctx.party)
    widths = await exchange_widths(session, x.shape[1])
    layout = make_layout(roles, config.seed)
    mean, scale = standardise_stats(x[roles == 0])
    laid = np.ascontiguousarray((x[layout.order] - mean) / scale, dtype=np.float64)
    remote = provider_product_applies(session)
    providers = [o for o, w in widths.items() if w and o not in session.compute]
    for owner, width in widths.items():
        if width and not (remote and owner in providers):
            await session.register(owner, laid if owner == session.ctx.party else None,
                                   (layout.n, width))
    result = MLPResult(mean=mean, scale=scale, widths=widths)
    theta = None
    net = None
    if remote and session.ctx.party in providers:
        await serve(session, laid, FixedPoint().f)
    if session.computes:
        net = MLPNetwork(session, widths, laid, config)
        if remote and providers:
            net.remote = ProviderProducts(session, providers)
            await net.remote.setup()
        theta = await _train_compute(session, net, y, label_holder, layout, config, result)
        result.shares = {"words": share_words(theta), "scale": theta.scale,
                         "suite": net.backend.suite.name, "compute": session.compute,
                         "widths": widths, "layers": list(config.layers)}
        opened = await (await net.logits(theta, slice(0, layout.n))).reveal(to=label_holder)
        if net.remote is not None:
            await net.remote.close()
        if opened is not None:
            opened = np.asarray(opened)
            result.scores_z = np.empty(opened.shape)
            result.scores_z[layout.order] = opened
    if config.reveal == "first-layer":
        await reveal_first_layer(session, widths, net, theta, config, result)
    return result


async def reveal_first_layer(session: VerticalSession, widths: dict[str, int],
                             net: MLPNetwork | None, theta: SecretTensor | None,
                             config: MLPConfig, result: MLPResult) -> None:
    """Each owner learns its block W1_o (and nothing else)."""
    offset = 0
    for owner, width in widths.items():
        if not width:
            continue
        part = None
        if net is not None and theta is not None:
            part = net.params.weight(theta, 0)[offset: offset + width]
        opened = await session.reveal_to(part, owner, (width, config.layers[0]))
        if opened is not None:
            result.first_layer = np.asarray(opened, dtype=np.float64)
        offset += width


async def _labels(backend: SecureBackend, bank: str, y: np.ndarray | None,
                  layout: Layout, config: MLPConfig) -> SecretTensor:
    """The labels as an (n, 1) column (sigmoid) or (n, classes) one-hot rows (softmax)."""
    width = config.outputs
    ordered = None
    if backend.suite.ctx.party == bank and y is not None:
        ordered = y[layout.order].reshape(-1, 1) if width == 1 else \
            one_hot(y[layout.order], width)
    return await backend.input(bank, ordered, shape=(layout.n, width))


async def _train_compute(session: VerticalSession, net: MLPNetwork, y: np.ndarray | None,
                         bank: str, layout: Layout, config: MLPConfig,
                         result: MLPResult) -> SecretTensor:
    """The epochs; returns the shared parameters kept at the best validation epoch."""
    backend = net.backend
    labels = await _labels(backend, bank, y, layout, config)
    theta = await initial_parameters(session, net.params, config)
    optimizer = Optimizer(backend, net.params, config)
    best, best_theta, waited = math.inf, theta, 0
    decide = session.ctx.subgroup(session.compute).scope("mlp-early-stop")
    for epoch in range(config.epochs):
        for rows in mlp_batches(layout, config.batch_size):
            acts, masks, z = await net.forward(theta, rows)
            delta = await net.output_delta(z, labels[rows])
            grad = await net.gradient(theta, acts, masks, delta, rows)
            theta = await optimizer.step(theta, grad, rows.stop - rows.start)
        result.epochs_run = epoch + 1
        if not layout.n_valid:
            best_theta = theta
            continue
        score = await _validation_brier(net, theta, labels, layout, bank, config)
        stop, keep = await _decide(decide, bank, epoch, score, best, waited, config, result)
        if keep:
            best, best_theta, waited = (score if score is not None else best), theta, 0
        else:
            waited += 1
        if stop:
            result.stopped_early = epoch + 1 < config.epochs
            break
    return best_theta


async def _validation_brier(net: MLPNetwork, theta: SecretTensor, labels: SecretTensor,
                            layout: Layout, bank: str, config: MLPConfig) -> float | None:
    """mean((p - y)^2) over the validation rows, opened to the label holder only."""
    rows = layout.valid
    z = await net.logits(theta, rows)
    d = await net.output_delta(z if z.ndim == 2 else z.reshape(-1, 1), labels[rows])
    total = (await (d * d)).sum()
    value = await (await mul_small(total, 1.0 / layout.n_valid)).reveal(to=bank)
    return None if value is None else float(np.asarray(value).ravel()[0])


async def _decide(ctx: Any, bank: str, epoch: int, score: float | None, best: float,
                  waited: int, config: MLPConfig, result: MLPResult) -> tuple[bool, bool]:
    """The label holder's verdict (stop, keep this epoch), broadcast to the compute parties."""
    if score is not None:
        result.history.append(round(score, 6))
        keep = score < best - config.tol
        stop = (0 if keep else waited + 1) >= config.patience
        await ctx.broadcast(f"stop/{epoch}", {"stop": stop, "keep": keep})
        return stop, keep
    verdict = await ctx.recv(bank, f"stop/{epoch}")
    if not isinstance(verdict, dict):
        raise ValueError(f"party {bank} sent a malformed early-stopping verdict")
    return bool(verdict.get("stop")), bool(verdict.get("keep"))
