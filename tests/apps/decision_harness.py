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
