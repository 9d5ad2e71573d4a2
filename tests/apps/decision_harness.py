"""Shared set-up for the decision-service tests: a store, partners' lists, an in-memory mesh."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from meshmpc_credit.decision.partner import serve_risk_list
from meshmpc_credit.decision.rating import BankScorecard
from meshmpc_credit.decision.records import DecisionRecords
from meshmpc_credit.decision.runtime import StrategyRuntime
from meshmpc_credit.decision.screens import PartnerScreens
from meshmpc_credit.decision.service import DecisionService
from meshmpc_credit.strategy.document import DEFAULT_STRATEGY
from meshmpc_credit.strategy.store import Actor, StrategyStore

from meshmpc.net import Context, MemoryMesh

PARTNERS = ["gov", "fin", "telco"]
ALICE = Actor("alice", frozenset({"strategy_editor"}))
BOB = Actor("bob", frozenset({"approver"}))
LISTS = {
    "fin": {"K-FRAUD": "fraud", "K-MULTI": "multi_lending", "K-TWO": "malicious_default"},
    "gov": {"K-TWO": "abnormal_operation", "K-GOV": "serious_violation"},
    "telco": {"K-TEL": "unverified_line"},
}
GOOD_FIELDS: dict[str, Any] = {
    "loan_amount": 800_000.0, "loan_term_months": 12, "interest_rate": 3.8,
    "collateral_type": "property", "guarantee_type": "none", "loan_purpose": "working_capital",
    "relationship_years": 9.0, "avg_deposit_balance_6m": 600_000.0}


def write_lists(directory: Path) -> dict[str, Path]:
    """One labelled risk list per partner (key, list_type, risk_level, listed_date)."""
    paths = {}
    for partner, listed in LISTS.items():
        keys = list(listed) + [f"{partner}-filler-{i}" for i in range(20)]
        kinds = list(listed.values()) + ["fraud" if partner != "gov" else "dishonest_debtor"] * 20
        table = pa.table({"credit_code": keys, "list_type": kinds,
                          "risk_level": ["high"] * len(keys),
                          "listed_date": ["2026-05-01"] * len(keys)})
        paths[partner] = directory / f"{partner}.risklist.parquet"
        pq.write_table(table, paths[partner])
    return paths


def published_store(url: str) -> StrategyStore:
    """A store whose ``preloan`` champion is the default strategy (v1)."""
    store = StrategyStore(url)
    version = store.propose("preloan", DEFAULT_STRATEGY.read_text(), ALICE)
    store.publish("preloan", version, BOB)
    return store


@contextlib.asynccontextmanager
async def running_service(directory: Path, silent: Sequence[str] = (), timeout_s: float = 2.0,
                          ) -> AsyncIterator[DecisionService]:
    """The bank's service over an in-memory mesh; partners in ``silent`` never answer."""
    url = f"sqlite:///{directory / 'credit.db'}"
    store = StrategyStore(url) if (directory / "credit.db").exists() else published_store(url)
    lists = write_lists(directory)
    meshes = MemoryMesh.group(["bank", *PARTNERS])
    partners = [asyncio.create_task(serve_risk_list(Context(meshes[p]), str(lists[p])))
                for p in PARTNERS if p not in silent]
    runtime = StrategyRuntime(store, "preloan", poll_s=0.02)
    runtime.refresh()
    screens = PartnerScreens(Context(meshes["bank"]), PARTNERS, timeout_s, timeout_s)
    await screens.start()
    watcher = asyncio.create_task(runtime.watch())
    service = DecisionService(runtime, screens, BankScorecard.load(), DecisionRecords(url))
    try:
        yield service
    finally:
        watcher.cancel()
        service.writer.close()
        await screens.close()
        await asyncio.wait_for(asyncio.gather(*partners), 10)


# --- the joint online score: partners' cards, features and joint PIR tables ------------------
JOINT_KEYS = [f"J-{i}" for i in range(40)]
"""Firms of the shared universe; partner p holds all but every 7th (offset by p)."""


def partner_card(party: str, offset: float) -> Any:
    """A two-feature points table of ``party`` (bins and WOE as the joint job writes them)."""
    from meshmpc.ml.scorecard import FeatureCard, PartyScorecard, ScorecardParams

    bins = [{"edges": [None, 10.0], "woe": 0.6 + offset, "missing": True},
            {"edges": [10.0, 20.0], "woe": 0.1}, {"edges": [20.0, None], "woe": -0.7}]
    return PartyScorecard(party, ScorecardParams(), [
        FeatureCard(f"{party}_a", 0.8, bins), FeatureCard(f"{party}_b", -0.4 - offset, bins)])


def bank_card() -> Any:
    from meshmpc.ml.scorecard import FeatureCard, PartyScorecard, ScorecardParams

    return PartyScorecard("bank", ScorecardParams(), [
        FeatureCard("loan_amount", 0.5, [{"edges": [None, 1e6], "woe": -0.3},
                                         {"edges": [1e6, None], "woe": 0.4}]),
        FeatureCard("collateral_type", 0.9, [{"category": ["property"], "woe": -0.8},
                                             {"category": ["none", None], "woe": 0.5}])],
        base_points=610.0)


def held_keys(partner: str) -> list[str]:
    index = PARTNERS.index(partner)
    return [k for i, k in enumerate(JOINT_KEYS) if (i + index) % 7 != 0]


def write_joint_inputs(directory: Path) -> dict[str, dict[str, str]]:
    """Per partner: features, card and risk list files; plus the universe file."""
    universe = directory / "universe.parquet"
    pq.write_table(pa.table({"credit_code": JOINT_KEYS + ["K-FRAUD", "K-OK"]}), universe)
    lists = write_lists(directory)
    out = {}
    for index, partner in enumerate(PARTNERS):
        keys = held_keys(partner) + (["K-FRAUD", "K-OK"] if partner != "telco" else []) \
            + (["G-ONLY"] if partner == "gov" else [])
        values = [float((7 * i + 3 * index) % 30) for i in range(len(keys))]
        features = pa.table({"credit_code": keys, f"{partner}_a": values,
                             f"{partner}_b": [v if i % 5 else None for i, v in
                                              enumerate(values)]})
        pq.write_table(features, directory / f"{partner}.features.parquet")
        partner_card(partner, index / 10).save(directory / f"{partner}_card")
        out[partner] = {"risk_list": str(lists[partner]),
                        "card": str(directory / f"{partner}_card.json"),
                        "data": str(directory / f"{partner}.features.parquet"),
                        "universe": str(universe)}
    bank_card().save(directory / "bank_card")
    return out


def plaintext_score(directory: Path, key: str, fields: dict[str, Any]) -> float:
    """The joint score recomputed from every party's card and data in the clear."""
    total = bank_card().score_fields(fields)
    for index, partner in enumerate(PARTNERS):
        card = partner_card(partner, index / 10)
        table = pq.read_table(directory / f"{partner}.features.parquet").to_pylist()
        row = next((r for r in table if r["credit_code"] == key), {})
        total += card.score_fields(row)
    return total


@contextlib.asynccontextmanager
async def running_joint_service(directory: Path, timeout_s: float = 2.0, retry_s: float = 1.0,
                                servers: dict[str, Any] | None = None,
                                gates: dict[str, Any] | None = None,
                                ) -> AsyncIterator[DecisionService]:
    """The bank's service with the joint score over an in-memory mesh (joint PIR tables);
    ``gates``: a partner's lookup gate (its node's grant caps), by partner."""
    from meshmpc_credit.decision.joint_score import BankCard, JointRater
    from meshmpc_credit.decision.partner import serve_joint

    url = f"sqlite:///{directory / 'credit.db'}"
    store = published_store(url)
    inputs = write_joint_inputs(directory)
    meshes = MemoryMesh.group(["bank", *PARTNERS])
    partners = [asyncio.create_task(serve_joint(Context(meshes[p]), **inputs[p],
                                                admit=(gates or {}).get(p)))
                for p in PARTNERS]
    runtime = StrategyRuntime(store, "preloan", poll_s=0.02)
    runtime.refresh()
    screens = PartnerScreens(Context(meshes["bank"]), PARTNERS, timeout_s, 30.0,
                             retry_s=retry_s)
    await screens.start()
    rater = JointRater(BankCard.load(directory / "bank_card.json"), PARTNERS)
    service = DecisionService(runtime, screens, rater, DecisionRecords(url))
    try:
        yield service
    finally:
        service.writer.close()
        await screens.close()
        await asyncio.wait_for(asyncio.gather(*partners), 10)
