"""The joint online score: one joint PIR query per partner gives the screens and the score."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from meshmpc_credit.decision.joint_score import combine
from meshmpc_credit.decision.joint_table import (
    ScoredKeys,
    joint_table,
    mask_partials,
    partial_scores,
)

from meshmpc.ml.predict import FRAC_BITS
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context, MemoryMesh, run
from meshmpc.pir.client import PirClient
from meshmpc.pir.server import PirServer

sys.path.insert(0, str(Path(__file__).parent))
from decision_harness import (  # noqa: E402
    GOOD_FIELDS,
    JOINT_KEYS,
    PARTNERS,
    held_keys,
    partner_card,
    plaintext_score,
    running_joint_service,
)

FIELDS = {**GOOD_FIELDS, "loan_amount": 500_000.0}


def _masked_tables() -> dict[str, ScoredKeys]:
    meshes = MemoryMesh.group(PARTNERS)
    universe = pa.array(JOINT_KEYS)

    async def one(partner: str) -> ScoredKeys:
        keys = held_keys(partner)
        features = pa.table({"credit_code": keys, f"{partner}_a": [1.0 * i for i in
                                                                   range(len(keys))],
                             f"{partner}_b": [30.0] * len(keys)})
        card = partner_card(partner, 0.0)
        k, held, partial = partial_scores(partner, features, card, universe=universe)
        return await mask_partials(Context(meshes[partner]), PARTNERS, k, held, partial)

    async def main() -> list[ScoredKeys]:
        return list(await asyncio.gather(*(one(p) for p in PARTNERS)))

    return dict(zip(PARTNERS, run(main()), strict=True))


def test_masks_cancel_only_in_the_sum_and_unheld_firms_get_the_default() -> None:
    scored = _masked_tables()
    epochs = {s.epoch for s in scored.values()}
    assert len(epochs) == 1
    by_key = {p: dict(zip(s.keys.to_pylist(), range(len(s.keys)), strict=True))
              for p, s in scored.items()}
    for key in JOINT_KEYS:
        total, plain = np.zeros(1, np.uint64), 0.0
        for partner, s in scored.items():
            row = by_key[partner][key]
            total = RING64.add(total, s.masked[row:row + 1])
            held = key in held_keys(partner)
            assert bool(s.held[row]) == held
            card = partner_card(partner, 0.0)
            if held:
                i = held_keys(partner).index(key)
                expected = card.score_fields({f"{partner}_a": float(i), f"{partner}_b": 30.0})
            else:  # the documented default: every feature missing
                expected = card.score_fields({})
            plain += expected
            own = float(RING64.decode(s.masked[row:row + 1], FRAC_BITS)[0])
            assert abs(own - expected) > 1.0  # one partner's word alone is not its score
        assert abs(float(RING64.decode(total, FRAC_BITS)[0]) - plain) < 1e-3


def test_records_of_different_epochs_are_never_summed() -> None:
    scored = _masked_tables()
    records = {}
    for partner, s in scored.items():
        table = joint_table(s, None).to_pylist()
        records[partner] = next(r for r in table if r["credit_code"] == JOINT_KEYS[1])
    assert combine(records, 600.0, PARTNERS).score is not None
    records["fin"] = {**records["fin"], "e": "0" * 8}
    outcome = combine(records, 600.0, PARTNERS)
    assert outcome.score is None and outcome.problem == "mask epochs differ"
    records["fin"] = None
    assert combine(records, 600.0, PARTNERS).no_record == ["fin"]


def test_decision_uses_one_joint_query_per_partner(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    queries: list[tuple[str, int]] = []
    original = PirClient.query

    async def counted(self: PirClient, keys: Any, auto_refresh: bool = True) -> Any:
        keys = list(keys)
        queries.append((self.server, len(keys)))
        return await original(self, keys, auto_refresh)

    monkeypatch.setattr(PirClient, "query", counted)

    async def main() -> None:
        async with running_joint_service(tmp_path) as service:
            for key in ["J-3", "J-7", "K-OK"]:  # J-7: telco does not hold it (default)
                queries.clear()
                answer = await service.decide(key, FIELDS)
                assert sorted(queries) == [("fin", 1), ("gov", 1), ("telco", 1)]
                assert answer["partners_unavailable"] == [] and answer["no_record"] == []
                assert abs(answer["score"] - plaintext_score(tmp_path, key, FIELDS)) < 1e-3
                assert answer["bank_contributions"][0]["field"] in ("collateral_type",
                                                                    "loan_amount")
            stored = service.records.get(answer["decision_id"])
            assert stored is not None
            assert stored["context"]["screen"]["telco"]["held"] is False
            assert stored["context"]["screen"]["gov"]["held"] is True
            fraud = await service.decide("K-FRAUD", FIELDS)  # listed at fin: same record
            assert fraud["decision"] == "decline" and "FIN_FRAUD" in fraud["reasons"]
            assert fraud["score"] is not None
            assert service.replay(fraud["decision_id"])["identical"] is True  # type: ignore[index]
            only_gov = await service.decide("G-ONLY", FIELDS)
            assert (only_gov["decision"], only_gov["score"]) == ("refer", None)
            assert only_gov["no_record"] == ["fin", "telco"]
            assert only_gov["reasons"][:2] == ["score unavailable: no record at fin",
                                               "score unavailable: no record at telco"]
            listed_only = await service.decide("K-MULTI", FIELDS)  # on fin's list, unscored
            assert listed_only["decision"] == "refer" and "FIN_MULTI_LENDING" in \
                listed_only["reasons"]
    run(main())


def test_partner_marked_down_recovers_after_the_back_off(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    slow = {"gov": True}
    original = PirServer._handle

    async def handle(self: PirServer, ctx: Context, client: str, op: Any, header: Any) -> None:
        if slow.get(ctx.party) and op == "query":
            await asyncio.sleep(1.0)  # past the bank's timeout: its answer comes too late
        await original(self, ctx, client, op, header)

    monkeypatch.setattr(PirServer, "_handle", handle)

    async def main() -> None:
        async with running_joint_service(tmp_path, timeout_s=0.4, retry_s=0.2) as service:
            link = service.screens.links["gov"]
            first = await service.decide("J-3", FIELDS)
            assert first["decision"] == "refer" and first["partners_unavailable"] == ["gov"]
            assert link.down is not None
            while_down = await service.decide("J-3", FIELDS)
            assert while_down["reasons"][0] == "partner unavailable: gov"
            slow["gov"] = False
            for _ in range(100):
                if link.down is None:
                    break
                await asyncio.sleep(0.1)
            assert link.down is None and link.recoveries == 1 and link.generation >= 1
            for key in ["J-3", "J-8", "K-FRAUD"]:  # the late answers are never read as these
                answer = await service.decide(key, FIELDS)
                assert answer["partners_unavailable"] == []
                assert abs(answer["score"] - plaintext_score(tmp_path, key, FIELDS)) < 1e-3
            assert "FIN_FRAUD" in answer["reasons"]
    run(main())
