"""The decision service as real processes: partners killed mid-service give refer (slow)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from meshmpc_bench.credit import start_parties, stop, version_text, wait_ready, write_lists
from meshmpc_credit.strategy.store import Actor, StrategyStore

from meshmpc.net.local import free_ports

FIELDS = {"loan_amount": 500_000.0, "loan_term_months": 12, "interest_rate": 3.5,
          "collateral_type": "property", "guarantee_type": "none",
          "loan_purpose": "working_capital", "relationship_years": 10.0,
          "avg_deposit_balance_6m": 900_000.0}


@pytest.mark.slow
def test_killed_partner_process_gives_refer(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'credit.db'}"
    store = StrategyStore(db)
    version = store.propose("preloan", version_text(1),
                            Actor("e", frozenset({"strategy_editor"})))
    store.publish("preloan", version, Actor("a", frozenset({"approver"})))
    port = free_ports(1)[0]
    procs = start_parties(tmp_path, write_lists(tmp_path, 1000, 5), db, port, None)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_ready(http, procs, tmp_path)
            unlisted = {"key": "K-none", "fields": FIELDS}
            first = (await http.post("/v1/decisions", json=unlisted)).json()
            assert first["decision"] == "approve" and first["partners_unavailable"] == []
            listed = (await http.post("/v1/decisions", json={"key": "K7", "fields": FIELDS}))
            assert listed.json()["reasons"][0].startswith("screens/gov_")  # 7 = 7*1+0: gov
            procs["telco"].kill()
            procs["telco"].wait()
            time.sleep(0.5)
            after = (await http.post("/v1/decisions", json=unlisted)).json()
            assert after["decision"] == "refer"
            assert after["partners_unavailable"] == ["telco"]
            assert after["reasons"][0] == "partner unavailable: telco"

    try:
        asyncio.run(main())
    finally:
        stop(procs)
