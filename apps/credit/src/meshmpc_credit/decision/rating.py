"""Scores for the strategy: the :class:`Rater` protocol and the bank's own scorecard.

:class:`Rater` has the signature of ``meshmpc.ml.predict.OnlineScorer.score``
(``async score(key, bank_fields) -> float``). :class:`BankScorecard` is a
points table over the bank's eight application fields (base points plus points
per bin): an illustrative configuration (JSON), not a model fitted here, the
service's score when no joint card is given. The joint online score (the
default with a trained bank card) is :class:`~.joint_score.JointRater`: the
screens' PIR records carry the partners' masked partial scores, so the screen
and the score cost one query per partner (protocols/credit-online-score.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

DEFAULT_CARD = Path(__file__).with_name("bank_card.json")


class Rater(Protocol):
    """Anything that scores one applicant from its key and the bank's fields."""

    async def score(self, key: str, bank_fields: Mapping[str, Any]) -> float: ...


class BankScorecard:
    """Base points plus, per bank field, the points of the bin its value falls in.

    Spec: ``{"base": 560, "fields": {name: {"missing": p, "bins": [[upper, p], ...],
    "categories": {value: p}}}}``; numeric bins are ``value < upper`` in order,
    the last upper may be ``null`` (no bound).
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.base = float(spec["base"])
        self.fields: dict[str, dict[str, Any]] = dict(spec["fields"])

    @classmethod
    def load(cls, path: Path = DEFAULT_CARD) -> BankScorecard:
        return cls(json.loads(path.read_text()))

    def points(self, fields: Mapping[str, Any]) -> dict[str, float]:
        """Points of every carded field (the bank's own contributions, explainable)."""
        return {name: self._field_points(name, spec, fields.get(name))
                for name, spec in self.fields.items()}

    @staticmethod
    def _field_points(name: str, spec: Mapping[str, Any], value: Any) -> float:
        if value is None:
            return float(spec.get("missing", 0.0))
        if "categories" in spec:
            return float(spec["categories"].get(str(value), spec.get("other", 0.0)))
        for upper, points in spec["bins"]:
            if upper is None or float(value) < float(upper):
                return float(points)
        raise ValueError(f"bank scorecard: field {name!r} value {value!r} is above every bin")

    def total(self, fields: Mapping[str, Any]) -> float:
        return self.base + sum(self.points(fields).values())

    async def score(self, key: str, bank_fields: Mapping[str, Any]) -> float:
        """The scorecard total (``key`` unused: the bank's own data is local)."""
        return self.total(bank_fields)

    def top_contributions(self, fields: Mapping[str, Any], count: int = 3
                          ) -> list[dict[str, Any]]:
        """The bank fields moving the score most (largest absolute points)."""
        points = self.points(fields)
        ranked = sorted(points.items(), key=lambda kv: abs(kv[1]), reverse=True)[:count]
        return [{"field": name, "points": value} for name, value in ranked]
