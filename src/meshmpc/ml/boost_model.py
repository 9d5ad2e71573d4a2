"""An sklearn-style front end to SecureBoost for one process (tests, notebooks, demos).

``SecureBoostClassifier().fit({"bank": Xb, "gov": Xg}, y)`` runs every party
over the in-memory mesh with the real protocol (encrypted gradients and all);
in production each party runs meshmpc.ml.boost (or the ``ml.boost`` job
component) in its own node. ``models_`` holds each party's own part, which
:meth:`save` writes one file per party.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from meshmpc.ml.boost import predict_bank, predict_partner, train_bank, train_partner
from meshmpc.ml.boost_core import BoostParams
from meshmpc.net import Context
from meshmpc.net.memory import run_parties


class SecureBoostClassifier:
    """Vertical gradient-boosted trees; the first party of ``fit`` (or ``bank``) holds y."""

    def __init__(self, bank: str = "bank", **params: Any):
        self.bank = bank
        self.params = BoostParams.from_mapping(params)
        self.models_: dict[str, dict[str, Any]] = {}

    def fit(self, parts: dict[str, np.ndarray], y: np.ndarray) -> SecureBoostClassifier:
        """Train on each party's columns of the same (aligned) rows."""
        partners = [q for q in parts if q != self.bank]

        async def job(ctx: Context) -> dict[str, Any]:
            if ctx.party == self.bank:
                return await train_bank(ctx, parts[self.bank], np.asarray(y, float), partners,
                                        self.params)
            return await train_partner(ctx, parts[ctx.party], self.bank)

        self.models_ = run_parties([self.bank, *partners], job)
        self.models_[self.bank].pop("margin", None)
        return self

    def predict_proba(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """Scores of the rows (probability of class 1, or the value for regression)."""
        partners = [q for q in self.models_ if q != self.bank]

        async def job(ctx: Context) -> np.ndarray | None:
            if ctx.party == self.bank:
                return await predict_bank(ctx, self.models_[self.bank], parts[self.bank], partners)
            await predict_partner(ctx, self.models_[ctx.party], parts[ctx.party])
            return None

        out = run_parties([self.bank, *partners], job)[self.bank]
        assert out is not None
        return out

    def predict(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """Class labels (logistic) or values (squared)."""
        s = self.predict_proba(parts)
        return (s >= 0.5).astype(int) if self.params.objective == "logistic" else s

    def save(self, directory: str | Path) -> None:
        """One JSON file per party: ``<party>.boost.json`` (its own part only)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for party, model in self.models_.items():
            (d / f"{party}.boost.json").write_text(json.dumps(model))

    @classmethod
    def load(cls, directory: str | Path, parties: list[str], bank: str = "bank"
             ) -> SecureBoostClassifier:
        """The models saved by :meth:`save` (each party would load only its own)."""
        d = Path(directory)
        models = {q: json.loads((d / f"{q}.boost.json").read_text()) for q in parties}
        params = dict(models[bank]["params"])
        out = cls(bank, **params)
        out.models_ = models
        return out
