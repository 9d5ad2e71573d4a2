"""scikit-learn-style ``VerticalMLPClassifier`` over one party's table.

Like :class:`meshmpc.ml.estimators.VerticalLogisticRegression`: every party
builds the same estimator with the same public parameters and awaits the same
methods in the same order with its own columns (SPMD). After ``fit`` each
party holds its part of the model (share words at the compute parties, the
first-layer block at each owner with ``reveal="first-layer"``);
``predict_proba`` is joint and only the label holder gets probabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from meshmpc.ml.estimators import PartyEstimatorMixin, as_table, float_matrix
from meshmpc.ml.logistic import split_roles
from meshmpc.ml.mlp import MLPConfig
from meshmpc.ml.mlp_model import FORMAT, MLPModel, score_rows
from meshmpc.ml.mlp_secure import train
from meshmpc.ml.model_io import load_model, save_model
from meshmpc.ml.step_data import check_labels
from meshmpc.ml.vertical import VerticalSession
from meshmpc.net import Context


class VerticalMLPClassifier(PartyEstimatorMixin):
    """A vertical MLP (ReLU hidden layers, sigmoid output) trained on secret shares."""

    def __init__(self, ctx: Context | None = None, label_holder: str = "bank",
                 security: str = "dishonest-majority", triples: str = "he",
                 hidden_layer_sizes: tuple[int, ...] = (64, 32), epochs: int = 10,
                 batch_size: int = 256, optimizer: str = "sgd", learning_rate: float = 0.05,
                 momentum: float = 0.9, l2: float = 1e-4, validation: float = 0.0,
                 patience: int = 2, reveal: str = "none") -> None:
        self.ctx = ctx
        self.label_holder = label_holder
        self.security = security
        self.triples = triples
        self.hidden_layer_sizes = hidden_layer_sizes
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.l2 = l2
        self.validation = validation
        self.patience = patience
        self.reveal = reveal
        self.model_: MLPModel | None = None

    def _config(self) -> MLPConfig:
        return MLPConfig(layers=tuple(self.hidden_layer_sizes), epochs=self.epochs,
                         batch_size=self.batch_size, optimizer=self.optimizer,
                         learning_rate=self.learning_rate, momentum=self.momentum, l2=self.l2,
                         patience=self.patience, reveal=self.reveal)

    def _context(self) -> Context:
        if self.ctx is None:
            raise ValueError("pass ctx (this party's mesh Context) to the estimator")
        return self.ctx

    async def fit(self, X: Any, y: Any = None) -> VerticalMLPClassifier:  # noqa: N803
        """Train on every row of X (this party's columns); y only at the label holder."""
        ctx = self._context()
        config = self._config()
        table = as_table(X)
        names = list(table.column_names)
        x = float_matrix(table, names)
        labels = None
        if ctx.party == self.label_holder:
            labels = check_labels(np.asarray(y, dtype=np.float64), ctx.party, "fit", "y")
        roles = split_roles(table.num_rows, 0.0, self.validation)
        session = await VerticalSession.open(ctx.scope("fit"), self.label_holder,
                                             self.security, triples=self.triples)
        result = await train(session, x, labels, self.label_holder, roles, config)
        self.model_ = MLPModel.from_result(ctx.party, names, result, config, self.security,
                                           session.compute, self.triples)
        return self

    async def decision_function(self, X: Any) -> np.ndarray | None:  # noqa: N803
        """Joint: the label holder gets the output logit of every row, the others None."""
        model = self._fitted()
        x = float_matrix(as_table(X), model.features)
        return await score_rows(self._context().scope("predict"), model, x, self.label_holder)

    async def predict_proba(self, X: Any) -> np.ndarray | None:  # noqa: N803
        """Joint: (n, 2) class probabilities at the label holder, None elsewhere."""
        z = await self.decision_function(X)
        if z is None:
            return None
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p, p])

    async def predict(self, X: Any) -> np.ndarray | None:  # noqa: N803
        proba = await self.predict_proba(X)
        return None if proba is None else (proba[:, 1] >= 0.5).astype(np.int64)

    def _fitted(self) -> MLPModel:
        if self.model_ is None:
            raise ValueError("call fit (or load) first")
        return self.model_

    def save(self, path: Path) -> Path:
        return save_model(Path(path), self._fitted().to_dict())

    def load(self, path: Path) -> VerticalMLPClassifier:
        self.model_ = MLPModel.from_dict(load_model(Path(path), FORMAT))
        return self
