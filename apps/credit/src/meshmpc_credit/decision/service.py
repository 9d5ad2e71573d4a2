"""One pre-loan decision end to end: screens, score, strategy, record; and its replay.

The order is fixed: PIR screens at every partner (concurrently) and the score,
then the decision context, then the strategy version picked for this applicant
(champion, or the challenger for its share of key hashes), then the record.
A partner that could not answer forces ``refer`` with the reason
``partner unavailable: <partner>`` whatever the strategy said: a missing
screen is never read as "not listed". With a :class:`JointRater` the score
comes from the same PIR records as the screens (one query per partner); a
partner without a score record for the applicant forces ``refer`` with
``score unavailable: no record at <partner>``.

Each decision carries a purpose (the service's ``purpose`` by default) and the
applicant's consent reference, checked before any lookup; the screens send them
with each batch. A partner whose node refuses the lookup (its grant's cap of
decisions reached, no grant for the purpose, no consent) forces ``refer`` with
``lookup refused by <partner>: <the node's reason>``; the refusal is no crash
and no outage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshmpc.data.consent import DEFAULT_PURPOSES, ConsentError, check_request
from meshmpc_credit.decision.joint_score import JointRater
from meshmpc_credit.decision.rating import Rater
from meshmpc_credit.decision.records import DecisionRecords, RecordWriter
from meshmpc_credit.decision.runtime import StrategyRuntime
from meshmpc_credit.decision.screens import Consent, PartnerScreens, ScreenResult
from meshmpc_credit.strategy.context import build_context, check_bank_fields, screen_entry
from meshmpc_credit.strategy.document import CompiledStrategy

UNAVAILABLE_RULE = {"node": "service", "rule": "partner_unavailable"}
NO_RECORD_RULE = {"node": "service", "rule": "score_unavailable"}
REFUSED_RULE = {"node": "service", "rule": "lookup_refused"}
DEFAULT_PURPOSE = "credit_approval"


@dataclass(frozen=True)
class Verdict:
    """A decision's answer (what the API returns) and the full row stored for it."""

    answer: dict[str, Any]
    row: dict[str, Any]


def decide_on(strategy: CompiledStrategy, context: dict[str, Any]) -> dict[str, Any]:
    """The strategy's answer for ``context``, with the partner-unavailable override."""
    evaluated = strategy.evaluate(context)
    outcome = evaluated.to_json()
    reasons = [f"{f['node']}/{f['rule']}" for f in outcome["fired"]]
    reasons += [str(code) for code in evaluated.result.get("reasons") or []]
    no_record = context.get("no_record") or []
    if no_record:
        outcome.update(decision="refer", suggested_limit=0.0)
        outcome["fired"].append(NO_RECORD_RULE)
        reasons = [f"score unavailable: no record at {p}" for p in no_record] + reasons
    refused = context.get("refused") or {}
    if refused:
        outcome.update(decision="refer", suggested_limit=0.0)
        outcome["fired"].append(REFUSED_RULE)
        reasons = [f"lookup refused by {p}: {why}" for p, why in sorted(refused.items())] \
            + reasons
    if context["unavailable"]:
        outcome.update(decision="refer", suggested_limit=0.0)
        outcome["fired"].append(UNAVAILABLE_RULE)
        reasons = [f"partner unavailable: {p}" for p in context["unavailable"]] + reasons
    outcome["reasons"] = reasons
    return outcome


class DecisionService:
    """Decides for applicants with the strategies in service; stores every decision."""

    def __init__(self, runtime: StrategyRuntime, screens: PartnerScreens,
                 rater: Rater | JointRater, records: DecisionRecords,
                 purpose: str = DEFAULT_PURPOSE) -> None:
        self.runtime, self.screens, self.rater, self.records = runtime, screens, rater, records
        self.writer = RecordWriter(records)
        self.purpose = purpose
        self.model: dict[str, Any] | None = None
        """The deployed model the rater comes from (name, version), when read from a node."""

    def use_rater(self, rater: Rater | JointRater, model: dict[str, Any] | None) -> None:
        """Swap the scorer (a newly deployed model) between two decisions' reads."""
        self.rater, self.model = rater, model

    def consent_of(self, purpose: str | None, reference: str | None) -> Consent:
        """The decision's purpose and consent, checked before any lookup (ConsentError);
        without a reference, a partner under grants refuses the lookup (a refer)."""
        purpose = purpose or self.purpose
        if reference is None:
            if purpose not in DEFAULT_PURPOSES:
                raise ConsentError(f"purpose {purpose!r} is not configured; use one of: "
                                   + ", ".join(sorted(DEFAULT_PURPOSES)))
            return Consent(purpose, None)
        check_request(purpose, [reference], DEFAULT_PURPOSES)
        return Consent(purpose, reference)

    async def decide(self, key: str, bank_fields: Mapping[str, Any],
                     purpose: str | None = None, consent_ref: str | None = None
                     ) -> dict[str, Any]:
        """Screen, score and decide for one applicant; the API answer."""
        check_bank_fields(bank_fields)
        consent = self.consent_of(purpose, consent_ref)
        began = time.perf_counter()
        rater, model = self.rater, self.model  # read once: a redeploy never mixes two models
        screened, score, no_record = await self._screen_and_score(key, bank_fields, consent,
                                                                  rater)
        screened_at = time.perf_counter()
        screens = {p: screen_entry(r) for p, r in screened.records.items()}
        context = build_context(bank_fields, screens, score, screened.unavailable,
                                sorted(set(no_record) - set(screened.unavailable)
                                       - set(screened.refused)))
        context["refused"] = dict(screened.refused)
        verdict = self.verdict(key, context, bank_fields, rater)
        context["consent"] = {"purpose": consent.purpose,  # what the bank recorded
                              "reference": consent.reference}
        if model is not None:
            verdict.answer["model"] = dict(model)
        decided_at = time.perf_counter()
        timings = {"screen_score": round((screened_at - began) * 1e3, 2),
                   "strategy": round((decided_at - screened_at) * 1e3, 2)}
        verdict.row["answer"] = {**verdict.answer, "timings_ms": timings}
        await self.writer.store(verdict.row)
        timings["record"] = round((time.perf_counter() - decided_at) * 1e3, 2)
        return {**verdict.answer, "timings_ms": timings}

    async def _screen_and_score(self, key: str, bank_fields: Mapping[str, Any],
                                consent: Consent | None, rater: Rater | JointRater
                                ) -> tuple[ScreenResult, float | None, list[str]]:
        """The screens, the score and the partners without a score for ``key``."""
        if isinstance(rater, JointRater):
            screened = await self.screens.lookup(key, consent)
            if screened.unavailable or screened.refused:
                return screened, None, []
            outcome = rater.combine(screened.records, bank_fields)
            return screened, outcome.score, outcome.no_record
        screened, (score, unscored) = await asyncio.gather(
            self.screens.lookup(key, consent), self._score(key, bank_fields, rater))
        return screened, score, unscored

    @staticmethod
    async def _score(key: str, bank_fields: Mapping[str, Any], rater: Rater
                     ) -> tuple[float | None, list[str]]:
        """The score, or None and the partners it needed: a joint scorer raises a
        ``LookupError`` (``ScoreUnavailable``, with ``missing``) when a partner lacks
        the key, which makes the decision a refer rather than a failed request."""
        try:
            return await rater.score(key, bank_fields), []
        except LookupError as exc:
            return None, [str(p) for p in getattr(exc, "missing", None) or ["score"]]

    def verdict(self, key: str, context: dict[str, Any], bank_fields: Mapping[str, Any],
                rater: Rater | JointRater | None = None) -> Verdict:
        """Run the version picked for ``key`` (one :class:`ActiveStrategies` read)."""
        active = self.runtime.active
        arm, strategy = active.pick(key)
        outcome = decide_on(strategy, context)
        shadow = decide_on(active.champion, context) if arm == "challenger" else None
        decision_id = uuid.uuid4().hex
        answer = {"decision_id": decision_id, "decision": outcome["decision"],
                  "grade": outcome["grade"], "score": context["score"],
                  "suggested_limit": outcome["suggested_limit"],
                  "price_band": outcome["price_band"], "reasons": outcome["reasons"],
                  "partners_unavailable": context["unavailable"],
                  "no_record": context.get("no_record") or [],
                  "lookups_refused": sorted(context.get("refused") or {}),
                  "strategy": strategy.name, "strategy_version": strategy.version, "arm": arm}
        explain = getattr(rater or self.rater, "top_contributions", None)
        if explain is not None:
            answer["bank_contributions"] = explain(bank_fields)
        row = {"id": decision_id, "applicant": key, "strategy": strategy.name,
               "version": strategy.version, "sha256": strategy.sha256, "arm": arm,
               "context": context, "answer": answer, "shadow": shadow}
        return Verdict(answer, row)

    def replay(self, decision_id: str) -> dict[str, Any] | None:
        """Re-run a stored decision on its stored context and version; None if unknown."""
        row = self.records.get(decision_id)
        if row is None:
            return None
        strategy = self.runtime.compiled(int(row["version"]))
        if strategy.sha256 != row["sha256"]:
            raise RuntimeError(f"decision {decision_id}: strategy {row['strategy']} "
                               f"v{row['version']} changed since it decided")
        outcome = decide_on(strategy, row["context"])
        stored = row["answer"]
        keys = ("decision", "grade", "suggested_limit", "price_band", "reasons")
        replayed = {k: outcome[k] for k in keys}
        return {"decision_id": decision_id, "strategy_version": strategy.version,
                "identical": all(replayed[k] == stored[k] for k in keys),
                "replayed": replayed, "stored": {k: stored[k] for k in keys}}
