"""scikit-learn-style estimators over one party's table (pyarrow Table or pandas DataFrame).

Every party constructs the same estimator with the same public parameters and
calls the same methods in the same order, each with its own columns (SPMD,
like the job components). Methods that talk to the other parties are
coroutines (``await est.fit(X, y)``), because the parties compute together
over the mesh; purely local ones (``transform``, ``get_params``, ``save``)
are plain methods. ``get_params`` / ``set_params`` follow scikit-learn's
contract (constructor arguments by name), so parameter grids can be built
the usual way. Models are saved per party with a format version
(:mod:`meshmpc.ml.model_io`): each file holds only that party's part.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.ml.logistic import LogisticConfig, LogisticResult, split_roles, train
from meshmpc.ml.model_io import (
    LogisticModel,
    load_model,
    logistic_model,
    read_logistic_model,
    save_model,
)
from meshmpc.ml.predict import sum_to
from meshmpc.ml.scorecard import PartyScorecard, ScorecardParams, build_card
from meshmpc.ml.step_data import check_labels
from meshmpc.ml.vertical import VerticalSession
from meshmpc.net import Context


def as_table(data: Any) -> pa.Table:
    """A pyarrow Table from a Table, a pandas DataFrame or a mapping of columns."""
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas, without importing it
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, dict):
        return pa.table(data)
    raise TypeError(f"expected a pyarrow Table or a pandas DataFrame, got {type(data).__name__}")


def float_matrix(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    if not columns:
        return np.zeros((table.num_rows, 0))
    return np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                            for c in columns])


class PartyEstimatorMixin:
    """get_params / set_params from the constructor's signature (scikit-learn's contract)."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters
                 if p not in ("self", "ctx")]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> PartyEstimatorMixin:
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; "
                                 f"valid: {sorted(valid)}")
            setattr(self, name, value)
        return self


class VerticalLogisticRegression(PartyEstimatorMixin):
    """Vertical logistic regression; after ``fit`` this party holds its own weights."""

    def __init__(self, ctx: Context | None = None, label_holder: str = "bank",
                 security: str = "dishonest-majority", triples: str = "ot",
                 epochs: int = 10, batch_size: int | None = None, learning_rate: float = 0.5,
                 l2: float = 1.0, class_weight: Any = None, validation: float = 0.0,
                 strict: bool = False) -> None:
        self.ctx = ctx
        self.label_holder = label_holder
        self.security = security
        self.triples = triples
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.class_weight = class_weight
        self.validation = validation
        self.strict = strict
        self.model_: LogisticModel | None = None

    def _config(self) -> LogisticConfig:
        return LogisticConfig(epochs=self.epochs, batch_size=self.batch_size,
                              learning_rate=self.learning_rate, l2=self.l2,
                              class_weight=self.class_weight, strict=self.strict)

    async def fit(self, X: Any, y: Any = None) -> VerticalLogisticRegression:  # noqa: N803
        """Train on every row of X (this party's columns); y only at the label holder."""
        if self.ctx is None:
            raise ValueError("pass ctx (this party's mesh Context) to the estimator")
        table = as_table(X)
        names = list(table.column_names)
        x = float_matrix(table, names)
        labels = None
        if self.ctx.party == self.label_holder:
            labels = check_labels(np.asarray(y, dtype=np.float64), self.ctx.party, "fit", "y")
        roles = split_roles(table.num_rows, 0.0, self.validation)
        session = await VerticalSession.open(self.ctx.scope("fit"), self.label_holder,
                                             self.security, triples=self.triples)
        result: LogisticResult = await train(session, x, labels, self.label_holder, roles,
                                             self._config())
        model = logistic_model(self.ctx.party, names, result, self._config(), self.security)
        self.model_ = read_logistic_model(model)
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        """This party's partial linear score x @ w of every row (local)."""
        model = self._fitted()
        table = as_table(X)
        partial = float_matrix(table, model.features) @ model.weights
        return partial + (model.intercept or 0.0)

    async def predict_proba(self, X: Any) -> np.ndarray | None:  # noqa: N803
        """Joint: the label holder gets (n, 2) class probabilities, the others None."""
        assert self.ctx is not None
        z = await sum_to(self.ctx.scope("predict"), self.label_holder, self.transform(X))
        if z is None:
            return None
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def _fitted(self) -> LogisticModel:
        if self.model_ is None:
            raise ValueError("call fit (or load) first")
        if self.model_.strict:
            raise ValueError("a strict model keeps its weights shared: score with ml.predict")
        return self.model_

    def save(self, path: Path) -> Path:
        model = self._fitted()
        data = {"format": "meshmpc.logistic", "version": 1, "party": model.party,
                "features": model.features, "weights": model.weights.tolist(),
                "intercept": model.intercept, "strict": False, "shares": None,
                "source": model.source, "stats": model.stats, "security": model.security,
                "config": model.config}
        return save_model(Path(path), data)

    def load(self, path: Path) -> VerticalLogisticRegression:
        self.model_ = read_logistic_model(load_model(Path(path), "meshmpc.logistic"))
        return self


class Scorecard(PartyEstimatorMixin):
    """This party's points table from its logistic weights and its binning model."""

    def __init__(self, pdo: float = 20.0, base_score: float = 600.0, base_odds: float = 50.0,
                 rate: float = 2.0, decimals: int | None = None) -> None:
        self.pdo = pdo
        self.base_score = base_score
        self.base_odds = base_odds
        self.rate = rate
        self.decimals = decimals
        self.card_: PartyScorecard | None = None

    def fit(self, model: VerticalLogisticRegression | LogisticModel,
            binning: dict[str, Any] | None = None) -> Scorecard:
        lr = model.model_ if isinstance(model, VerticalLogisticRegression) else model
        if lr is None:
            raise ValueError("the logistic model is not fitted")
        params = ScorecardParams(self.pdo, self.base_score, self.base_odds, self.rate,
                                 self.decimals)
        self.card_ = build_card(lr.party, lr.features, lr.weights, params, binning,
                                lr.intercept)
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        """Points per row and feature of a WOE table (columns in card order)."""
        card = self._card()
        woe = float_matrix(as_table(X), [f.name for f in card.features])
        weights = np.array([f.weight for f in card.features])
        return card.params.round(-card.params.factor * woe * weights)

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """This party's partial score of every row (base points included at the bank)."""
        card = self._card()
        return card.partial_from_woe(float_matrix(as_table(X), [f.name for f in card.features]))

    async def predict_joint(self, ctx: Context, X: Any, bank: str = "bank"  # noqa: N803
                            ) -> np.ndarray | None:
        """Joint total scores, learnt by the bank only."""
        return await sum_to(ctx.scope("card"), bank, self.predict(X))

    def _card(self) -> PartyScorecard:
        if self.card_ is None:
            raise ValueError("call fit (or load) first")
        return self.card_

    def save(self, path: Path) -> list[Path]:
        return self._card().save(Path(path))

    def load(self, path: Path) -> Scorecard:
        self.card_ = PartyScorecard.load(Path(path))
        return self
