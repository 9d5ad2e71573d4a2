"""Vertical multilayer perceptron: configuration, initialisation and the float reference.

The network is ``dense -> ReLU -> ... -> dense -> sigmoid`` with binary
cross-entropy. Its first layer is split by column owner,

    h1 = sum_o X_o @ W1_o + b1,

so each owner's rows meet the shared weights only through the owner-matrix
product (:mod:`meshmpc.ml.product`); every later layer runs on secret shares
(:mod:`meshmpc.ml.mlp_secure`). This module holds what the secure trainer and
its plaintext yardstick share: the public hyper-parameters (:class:`MLPConfig`),
the layer shapes, the distributed weight initialisation and
:func:`reference_train`, the same algorithm on pooled float64 data.

Update rule (both optimisers work in units of ``batch_size`` x the mean
gradient, so fixed-point values stay well above the 2^-16 resolution):

    G = sum over the batch of dLoss/dW;   g = (G + l2 W) * (M / m)       (M = batch_size)
    sgd:  v = momentum v + g;              W -= (lr / M) v
    adam: m1 = b1 m1 + (1 - b1) g;  m2 = b2 m2 + (1 - b2) g^2;
          W -= lr / (1 - b1^t) * m1 / sqrt(m2 / (1 - b2^t) + eps M^2)

l2 follows scikit-learn's ``alpha`` (gradient + alpha W / m on weights, not
biases); the Adam ``eps`` sits under the square root (fixed point cannot add
a 1e-8 after it) and defaults to 2^-18, so ``eps M^2`` >= 2^-8, the lower end
of the secure reciprocal square root's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meshmpc.ml.logistic import Layout
from meshmpc.ml.vertical import VerticalError
from meshmpc.mpc.prg import Prg

OPTIMIZERS = ("sgd", "adam")
OUTPUTS = ("sigmoid", "softmax")
MAX_CLASSES = 64
REVEAL_MODES = ("none", "first-layer")
MAX_UNITS = 4096
INIT_STREAM_NONCE = 0x4D4C50  # "MLP": the PRG nonce of weight initialisation


def parse_layers(spec: Any, field: str = "layers") -> tuple[int, ...]:
    """Hidden-layer widths from ``"64,32"``, ``[64, 32]`` or ``64``; the error names ``field``."""
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
    elif isinstance(spec, int) and not isinstance(spec, bool):
        parts = [str(spec)]
    elif isinstance(spec, Sequence):
        parts = [str(p).strip() for p in spec]
    else:
        raise VerticalError(f"ml.mlp: {field} must be a list of hidden-layer widths such as "
                            f"[64, 32] or \"64,32\", got {spec!r}")
    widths = []
    for part in parts:
        if not part.isdigit() or not 1 <= int(part) <= MAX_UNITS:
            raise VerticalError(f"ml.mlp: {field} entry {part!r} is not a layer width; each "
                                f"hidden layer is a whole number of units in 1..{MAX_UNITS} "
                                f"(unknown layer spec in {spec!r})")
        widths.append(int(part))
    if not widths:
        raise VerticalError(f"ml.mlp: {field} is empty; give at least one hidden layer, "
                            f"e.g. [64, 32]")
    return tuple(widths)


@dataclass(frozen=True)
class MLPConfig:
    """Hyper-parameters of ``ml.mlp`` (all public to the step's parties)."""

    layers: tuple[int, ...] = (64, 32)
    epochs: int = 10
    batch_size: int = 256
    optimizer: str = "sgd"
    learning_rate: float = 0.05
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 2.0 ** -18
    l2: float = 1e-4
    """scikit-learn's alpha: gradient + l2 * W / m on weights (not biases)."""
    patience: int = 2
    tol: float = 1e-4
    output: str = "sigmoid"
    """"sigmoid": binary labels 0/1; "softmax": labels 0..classes-1, cross-entropy."""
    classes: int = 2
    """Number of classes of a softmax output (ignored for sigmoid)."""
    sigmoid: str = "poly8"
    reveal: str = "none"
    """"none": every weight stays secret-shared; "first-layer": each owner learns W1_o."""
    seed: int = 0
    """Public seed of the batch order (no secret)."""
    init_seed: bytes | None = None
    """Tests only: derive the parties' initialisation contributions from this public seed
    (so a float reference can start from the same weights). None: each party draws a
    fresh key from the OS."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", parse_layers(self.layers))
        checks = [
            (isinstance(self.epochs, int) and self.epochs >= 1, "epochs",
             f"must be a whole number of at least 1, got {self.epochs!r}"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
             f"must be a positive number of rows, got {self.batch_size!r}"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {OPTIMIZERS}, "
             f"got {self.optimizer!r}"),
            (self.output in OUTPUTS, "output", f"must be one of {OUTPUTS} (sigmoid: binary "
             f"labels, softmax: several classes), got {self.output!r}"),
            (isinstance(self.classes, int) and 2 <= self.classes <= MAX_CLASSES, "classes",
             f"must be a whole number in 2..{MAX_CLASSES}, got {self.classes!r}"),
            (self.reveal in REVEAL_MODES, "reveal", f"must be one of {REVEAL_MODES}, "
             f"got {self.reveal!r}"),
            (self.learning_rate > 0, "learning_rate", "must be positive"),
            (0 <= self.momentum < 1, "momentum", "must be in [0, 1)"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1/beta2", "must be in [0, 1)"),
            (self.eps * self.batch_size ** 2 >= 2.0 ** -8, "eps",
             "times batch_size^2 must be at least 2^-8 (the secure rsqrt's range)"),
            (self.l2 >= 0, "l2", "must be non-negative"),
            (isinstance(self.patience, int) and self.patience >= 1, "patience",
             "must be at least 1"),
        ]
        for ok, name, what in checks:
            if not ok:
                raise VerticalError(f"ml.mlp: {name} {what}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MLPConfig:
        """From a job step's ``params`` (unknown keys are the caller's business)."""
        keys = {f for f in cls.__dataclass_fields__ if f != "init_seed"}
        return cls(**{k: params[k] for k in keys if k in params})


    @property
    def outputs(self) -> int:
        """Width of the output layer: 1 logit (sigmoid) or one per class (softmax)."""
        return self.classes if self.output == "softmax" else 1


def layer_shapes(n_inputs: int, layers: Sequence[int], outputs: int = 1
                 ) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every dense layer, the output layer (fan_out ``outputs``) last."""
    sizes = [n_inputs, *layers, outputs]
    return [(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]


def init_bound(fan_in: int, fan_out: int) -> float:
    """Glorot-uniform bound with scikit-learn's factor 6 for ReLU networks."""
    return math.sqrt(6.0 / (fan_in + fan_out))


def init_contribution(key: bytes, shapes: Sequence[tuple[int, int]], parties: int
                      ) -> list[np.ndarray]:
    """One compute party's additive part of every weight matrix (biases start at 0).

    Each of the C compute parties draws U_c uniform on [-a, a] from its own PRG key
    and inputs U_c / sqrt(C): the sum has the variance a^2 / 3 of Glorot's uniform
    initialisation and no party knows it.
    """
    prg = Prg(key)
    total = int(sum(a * b for a, b in shapes))
    words = prg.words(total, INIT_STREAM_NONCE)
    unit = (words >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    out, offset = [], 0
    for fan_in, fan_out in shapes:
        block = unit[offset: offset + fan_in * fan_out].reshape(fan_in, fan_out)
        offset += fan_in * fan_out
        out.append((2.0 * block - 1.0) * init_bound(fan_in, fan_out) / math.sqrt(parties))
    return out


def public_init_key(seed: bytes, index: int) -> bytes:
    """The public initialisation key of compute party ``index`` under a test seed."""
    return (bytes(seed) + bytes([index]) * 16)[:15] + bytes([index])


def reference_init(config: MLPConfig, n_inputs: int, parties: int) -> list[np.ndarray]:
    """The initial weight matrices a secure run with ``config.init_seed`` starts from."""
    if config.init_seed is None:
        raise VerticalError("reference_init needs config.init_seed (a test seed)")
    shapes = layer_shapes(n_inputs, config.layers, config.outputs)
    parts = [init_contribution(public_init_key(config.init_seed, i), shapes, parties)
             for i in range(parties)]
    return [sum((p[k] for p in parts), np.zeros(shapes[k])) for k in range(len(shapes))]


def step_scales(config: MLPConfig, rows: int) -> tuple[float, float]:
    """(M / m, lr / M): the factor bringing a batch's summed gradient to M-units, and the
    factor from M-units to a weight step (see the module docstring)."""
    return config.batch_size / rows, config.learning_rate / config.batch_size


def adam_factors(config: MLPConfig, t: int) -> tuple[float, float, float]:
    """(lr / (1 - b1^t), 1 / (1 - b2^t), eps M^2) of Adam step t (from 1)."""
    return (config.learning_rate / (1 - config.beta1 ** t), 1.0 / (1 - config.beta2 ** t),
            config.eps * config.batch_size ** 2)


def mlp_batches(layout: Layout, batch_size: int) -> list[slice]:
    return [slice(lo, min(lo + batch_size, layout.n_train))
            for lo in range(0, layout.n_train, batch_size)]


def standardise_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (mean, std) of an owner's training rows (std 1 for constant columns)."""
    if x.shape[0] == 0:
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    std = x.std(axis=0)
    return x.mean(axis=0), np.where(std > 1e-12, std, 1.0)


# --- the float reference ------------------------------------------------------------
@dataclass
class ReferenceModel:
    """Weights (W_k, b_k per layer) and the validation Brier score of every epoch."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    history: list[float]
    epochs_run: int

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The output logit z of every row ((n,) for sigmoid, (n, classes) for softmax)."""
        a = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            a = np.maximum(a @ w + b, 0.0)
        z = np.asarray(a @ self.weights[-1] + self.biases[-1])
        return z.ravel() if z.shape[1] == 1 else z


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, classes) logits (float reference)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    """(n, classes) indicator rows of integer labels 0..classes-1."""
    labels = np.asarray(y).astype(np.int64).ravel()
    out = np.zeros((labels.size, classes))
    out[np.arange(labels.size), labels] = 1.0
    return out


def output_probabilities(z: np.ndarray) -> np.ndarray:
    """sigmoid of (n,) logits, softmax of (n, classes) logits."""
    return _sigmoid(z) if z.ndim == 1 else softmax(z)


def check_labels(y: np.ndarray, config: MLPConfig, party: str) -> None:
    """Labels must be 0/1 (sigmoid) or whole numbers 0..classes-1 (softmax)."""
    values = np.asarray(y, dtype=np.float64).ravel()
    top = config.outputs - 1 if config.output == "softmax" else 1
    bad = np.flatnonzero((values != np.round(values)) | (values < 0) | (values > top))
    if bad.size:
        raise VerticalError(f"party {party}: label of row {int(bad[0])} is {values[bad[0]]!r}; "
                            f"ml.mlp with output {config.output} needs labels in 0..{top}")


def _gradients(model: ReferenceModel, x: np.ndarray, y: np.ndarray
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Summed gradients of the batch's cross-entropy (p - y at the output)."""
    acts, masks = [x], []
    for w, b in zip(model.weights[:-1], model.biases[:-1], strict=True):
        h = acts[-1] @ w + b
        masks.append((h >= 0).astype(np.float64))
        acts.append(h * masks[-1])
    z = acts[-1] @ model.weights[-1] + model.biases[-1]
    delta = softmax(z) - y if y.ndim == 2 else (_sigmoid(z).ravel() - y)[:, None]
    gw, gb = [], []
    for k in range(len(model.weights) - 1, -1, -1):
        gw.append(acts[k].T @ delta)
        gb.append(delta.sum(axis=0))
        if k:
            delta = (delta @ model.weights[k].T) * masks[k - 1]
    return gw[::-1], gb[::-1]


def reference_train(x: np.ndarray, y: np.ndarray, layout: Layout, config: MLPConfig,
                    init: list[np.ndarray]) -> ReferenceModel:
    """The secure algorithm on pooled, already standardised float64 rows (exact sigmoid).

    ``x`` and ``y`` are in the original row order; ``layout`` orders them as the
    secure trainer does. Not private: the tests' and the benchmark's yardstick.
    """
    xs, ys = x[layout.order], y[layout.order].astype(np.float64)
    if config.output == "softmax":
        ys = one_hot(ys, config.outputs)
    model = ReferenceModel([w.copy() for w in init], [np.zeros(w.shape[1]) for w in init],
                           [], 0)
    state = [np.zeros_like(p) for p in (*model.weights, *model.biases)]
    second = [np.zeros_like(p) for p in state]
    best, best_params, waited, t = math.inf, None, 0, 0
    for _epoch in range(config.epochs):
        for rows in mlp_batches(layout, config.batch_size):
            t += 1
            gw, gb = _gradients(model, xs[rows], ys[rows])
            up, per = step_scales(config, rows.stop - rows.start)
            params = [*model.weights, *model.biases]
            grads = [(g + config.l2 * w) * up for g, w in zip(gw, model.weights, strict=True)]
            grads += [g * up for g in gb]
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                if config.optimizer == "sgd":
                    state[i] = config.momentum * state[i] + g
                    p -= per * state[i]
                else:
                    rate, unbias, eps = adam_factors(config, t)
                    state[i] = config.beta1 * state[i] + (1 - config.beta1) * g
                    second[i] = config.beta2 * second[i] + (1 - config.beta2) * g * g
                    p -= rate * state[i] / np.sqrt(second[i] * unbias + eps)
        model.epochs_run += 1
        if not layout.n_valid:
            continue
        vr = layout.valid
        p = output_probabilities(model.forward(xs[vr]))
        score = float(np.mean(np.sum(((p - ys[vr]) ** 2).reshape(len(p), -1), axis=1)))
        model.history.append(score)
        if score < best - config.tol:
            best, waited = score, 0
            best_params = ([w.copy() for w in model.weights], [b.copy() for b in model.biases])
        else:
            waited += 1
        if waited >= config.patience:
            break
    if best_params is not None:
        model.weights, model.biases = best_params
    return model
