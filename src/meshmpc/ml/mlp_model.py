"""The per-party model file of a vertical MLP and joint scoring with it.

Each party's file holds only its part: its feature names and standardisation
(mean, scale of its training rows), the public shape (layers, every party's
width, compute parties, suite), and

- at a compute party: its share words of the flat parameter vector
  (:class:`~meshmpc.ml.mlp_secure.ParamLayout` order);
- with ``reveal: first-layer``, at each owner: its own block W1_o.

Joint scoring (:func:`score_rows`) needs the compute parties of training
(same suite, same order) and every owner; the label holder learns the output
logit z of every row, nobody learns anything else. With first-layer blocks
the owners compute their partial pre-activations X_o W1_o locally and only
those are secret-shared (n x layers[0] words per owner instead of an owner
product per block).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshmpc.linalg import SecretTensor
from meshmpc.ml.logistic import exchange_widths
from meshmpc.ml.mlp import MLPConfig
from meshmpc.ml.mlp_secure import MLPNetwork, MLPResult
from meshmpc.ml.model_io import check_format
from meshmpc.ml.vertical import VerticalError, VerticalSession, tensor_from_words
from meshmpc.net import Context

FORMAT = "meshmpc.mlp"
VERSION = 1


@dataclass
class MLPModel:
    """One party's part of a trained vertical MLP."""

    party: str
    features: list[str]
    layers: list[int]
    widths: dict[str, int]
    mean: np.ndarray
    scale: np.ndarray
    security: str
    compute_parties: list[str]
    triples: str = "ot"
    reveal: str = "none"
    shares: dict[str, Any] | None = None
    first_layer: np.ndarray | None = None
    source: str = "woe"
    stats: dict[str, Any] = field(default_factory=dict)
    output: str = "sigmoid"
    classes: int = 2

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "party": self.party,
                "features": self.features, "layers": self.layers, "widths": self.widths,
                "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "security": self.security, "compute_parties": self.compute_parties,
                "triples": self.triples, "reveal": self.reveal, "shares": self.shares,
                "first_layer": None if self.first_layer is None else self.first_layer.tolist(),
                "source": self.source, "stats": self.stats, "output": self.output,
                "classes": self.classes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPModel:
        check_format(data, FORMAT, VERSION)
        first = data.get("first_layer")
        return cls(party=str(data["party"]), features=list(data["features"]),
                   layers=[int(v) for v in data["layers"]],
                   widths={str(k): int(v) for k, v in data["widths"].items()},
                   mean=np.asarray(data["mean"], dtype=np.float64),
                   scale=np.asarray(data["scale"], dtype=np.float64),
                   security=str(data["security"]),
                   compute_parties=list(data["compute_parties"]),
                   triples=str(data.get("triples", "ot")), reveal=str(data.get("reveal")),
                   shares=data.get("shares"),
                   first_layer=None if first is None else np.asarray(first, dtype=np.float64),
                   source=str(data.get("source", "woe")), stats=dict(data.get("stats") or {}),
                   output=str(data.get("output", "sigmoid")), classes=int(data.get("classes", 2)))

    @classmethod
    def from_result(cls, party: str, features: list[str], result: MLPResult,
                    config: MLPConfig, security: str, compute: list[str], triples: str,
                    source: str = "woe", stats: dict[str, Any] | None = None) -> MLPModel:
        assert result.mean is not None and result.scale is not None
        return cls(party=party, features=features, layers=list(config.layers),
                   widths=dict(result.widths), mean=result.mean, scale=result.scale,
                   security=security, compute_parties=list(compute), triples=triples,
                   reveal=config.reveal, shares=result.shares, first_layer=result.first_layer,
                   source=source, stats=dict(stats or {}), output=config.output,
                   classes=config.classes)


class PrecomputedFirstLayer(MLPNetwork):
    """The network with h1 - b1 already shared (the owners' X_o W1_o, summed)."""

    partial: SecretTensor

    async def first_layer(self, theta: SecretTensor, rows: slice) -> SecretTensor:
        m = rows.stop - rows.start
        bias = self.params.bias(theta, 0).reshape(1, -1).broadcast_to((m, self.config.layers[0]))
        return self.partial[rows] + bias


async def score_rows(ctx: Context, model: MLPModel, x: np.ndarray,
                     label_holder: str) -> np.ndarray | None:
    """The label holder's logits z for every row of ``x`` (this party's columns); others None."""
    if x.shape[1] != len(model.features):
        raise VerticalError(f"party {ctx.party}: {x.shape[1]} feature columns but the MLP "
                            f"model was trained on {len(model.features)}")
    session = await VerticalSession.open(ctx.scope("mlp-score"), label_holder, model.security,
                                         triples=model.triples, compute=model.compute_parties)
    xs = np.ascontiguousarray((x - model.mean) / model.scale, dtype=np.float64)
    widths = await exchange_widths(session, xs.shape[1])
    if widths != model.widths:
        raise VerticalError(f"party {ctx.party}: the parties' feature counts {widths} differ "
                            f"from the model's {model.widths}; score with the same columns")
    n = xs.shape[0]
    config = MLPConfig(layers=tuple(model.layers), output=model.output, classes=model.classes)
    if model.reveal == "first-layer":
        partial = await _shared_partials(session, model, xs)
        if partial is None:
            return None
        net: MLPNetwork = PrecomputedFirstLayer(session, widths, None, config)
        assert isinstance(net, PrecomputedFirstLayer)
        net.partial = partial
    else:
        for owner, width in widths.items():
            if width:
                await session.register(owner, xs if owner == ctx.party else None, (n, width))
        if not session.computes:
            return None
        net = MLPNetwork(session, widths, xs, config)
    if model.shares is None:
        raise VerticalError(f"party {ctx.party}: the MLP model holds no weight shares; "
                            f"score with the compute parties of training")
    theta = tensor_from_words(session.require_backend(), model.shares["words"],
                              int(model.shares["scale"]))
    opened = await (await net.logits(theta, slice(0, n))).reveal(to=label_holder)
    return None if opened is None else np.asarray(opened, dtype=np.float64)


async def _shared_partials(session: VerticalSession, model: MLPModel,
                           xs: np.ndarray) -> SecretTensor | None:
    """sum_o <X_o W1_o>: each owner shares its partial pre-activations (n x layers[0])."""
    me, n, h1 = session.ctx.party, xs.shape[0], model.layers[0]
    mine = None
    if model.widths.get(me, 0):
        if model.first_layer is None:
            raise VerticalError(f"party {me}: the model has no first-layer block; it was "
                                f"trained with reveal: none (score it with the shared weights)")
        mine = xs @ model.first_layer
    total = None
    for owner, width in model.widths.items():
        if not width:
            continue
        part = None
        if owner in session.compute:
            if session.computes:
                part = await session.require_backend().input(
                    owner, mine if owner == me else None, shape=(n, h1))
        else:
            await session.register(owner, mine if owner == me else None, (n, h1))
            part = session.shared_matrix(owner) if session.computes else None
        if part is not None:
            total = part if total is None else total + part
    return total
