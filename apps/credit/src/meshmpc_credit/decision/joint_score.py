"""The bank's joint online score from the partners' joint PIR records (one query each).

The screens already fetched every partner's record for the applicant
(:mod:`.joint_table`); the score is the bank's own partial (its points table
from the joint job, base points included) plus the sum of the partners'
``masked`` words in Z_2^64, decoded from fixed point: the pairwise masks
cancel, so the bank learns the total and nothing of any partner's part (with
two partners or more; protocols/credit-online-score.md).

No score exists when a partner has no record for the applicant (not found,
or listed without a score), or when the records carry different mask epochs
(a partner republished alone): :class:`JointOutcome` then names those
partners and the decision is referred, never scored on noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.data.vault import Vault
from meshmpc.ml.predict import FRAC_BITS
from meshmpc.ml.scorecard import PartyScorecard
from meshmpc.mpc.ring import RING64
from meshmpc_credit.decision.joint_table import EPOCH, HELD, MASKED

WORD_LIMIT = 1 << 64


@dataclass(frozen=True)
class JointOutcome:
    """The joint score (None if none could be formed) and why not."""

    score: float | None
    no_record: list[str] = field(default_factory=list)
    problem: str | None = None


def combine(records: Mapping[str, Mapping[str, Any] | None], bank_partial: float,
            partners: Sequence[str]) -> JointOutcome:
    """Sum the partners' masked partials and the bank's own; see the module docstring."""
    missing = [p for p in partners if _word(records.get(p)) is None]
    if missing:
        return JointOutcome(None, missing, "no record")
    epochs = {str(records[p][EPOCH]) for p in partners}  # type: ignore[index]
    if len(epochs) != 1:
        return JointOutcome(None, list(partners), "mask epochs differ")
    words = np.array([_word(records[p]) for p in partners], dtype=np.uint64)
    total = np.zeros(1, np.uint64)
    for word in words:
        total = RING64.add(total, word.reshape(1))
    return JointOutcome(float(RING64.decode(total, FRAC_BITS)[0]) + float(bank_partial))


def _word(record: Mapping[str, Any] | None) -> int | None:
    """The record's masked word, or None where there is none (or it is malformed)."""
    if not record or record.get(MASKED) is None or not record.get(EPOCH):
        return None
    try:
        word = int(str(record[MASKED]))
    except ValueError:
        return None
    return word if 0 <= word < WORD_LIMIT else None


def held_by(record: Mapping[str, Any] | None) -> bool:
    """Whether the partner's record says it holds data on the applicant."""
    return bool(record and record.get(HELD))


class BankCard:
    """The bank's part of the joint job's scorecard: base points plus its features' points."""

    def __init__(self, card: PartyScorecard) -> None:
        if card.base_points is None:
            raise ValueError(f"scorecard of party {card.party} has no base points: the "
                             f"bank's card (the label holder's) carries them")
        self.card = card
        self._single = {f.name: PartyScorecard(card.party, card.params, [f], None)
                        for f in card.features}

    @classmethod
    def load(cls, path: Path, vault: Vault | None = None) -> BankCard:
        """The bank's card from the joint job (sealed at rest: opened with ``vault``, else
        the bank's local key)."""
        return cls(load_card(path, vault))

    def partial(self, fields: Mapping[str, Any]) -> float:
        """The bank's partial score of one applicant (base points included)."""
        return self.card.score_fields(fields)

    def points(self, fields: Mapping[str, Any]) -> dict[str, float]:
        """Points of every carded bank field (its own contributions, explainable)."""
        return {name: float(one.partial_from_table(pa.table({name: [fields.get(name)]}))[0])
                for name, one in self._single.items()}

    def top_contributions(self, fields: Mapping[str, Any], count: int = 3
                          ) -> list[dict[str, Any]]:
        """The bank fields moving the score most (largest absolute points)."""
        ranked = sorted(self.points(fields).items(), key=lambda kv: abs(kv[1]),
                        reverse=True)[:count]
        return [{"field": name, "points": round(value, 4)} for name, value in ranked]


class JointRater:
    """The decision service's joint scorer: the bank's card plus the partners' records."""

    def __init__(self, card: BankCard, partners: Sequence[str]) -> None:
        self.card, self.partners = card, list(partners)

    def combine(self, records: Mapping[str, Mapping[str, Any] | None],
                bank_fields: Mapping[str, Any]) -> JointOutcome:
        """The applicant's joint score from the screens' records (see :func:`combine`)."""
        return combine(records, self.card.partial(bank_fields), self.partners)

    def top_contributions(self, fields: Mapping[str, Any], count: int = 3
                          ) -> list[dict[str, Any]]:
        """The bank's own top contributions (the partners' only in the total)."""
        return self.card.top_contributions(fields, count)


def load_card(path: Path, vault: Vault | None = None) -> PartyScorecard:
    """A party's ``scorecard.json`` from the joint job, sealed or not."""
    import json

    from meshmpc.jobs.artefacts import read_artefact

    return PartyScorecard.from_dict(json.loads(read_artefact(Path(path), vault)))


def is_trained_card(path: Path, vault: Vault | None = None) -> bool:
    """True for a ``meshmpc.scorecard`` JSON (the joint job's), False for the bank's
    illustrative points table (:class:`~meshmpc_credit.decision.rating.BankScorecard`)."""
    import json

    from meshmpc.jobs.artefacts import read_artefact

    data = json.loads(read_artefact(Path(path), vault))
    return isinstance(data, dict) and data.get("format") == "meshmpc.scorecard"
