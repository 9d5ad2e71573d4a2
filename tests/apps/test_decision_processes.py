"""The decision service as real processes (slow): a killed partner gives refer; the joint score."""

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


@pytest.mark.slow
def test_joint_score_through_real_processes(tmp_path: Path) -> None:
    from meshmpc_bench import _credit_joint as joint

    db = f"sqlite:///{tmp_path / 'credit.db'}"
    store = StrategyStore(db)
    version = store.propose("preloan", version_text(1),
                            Actor("e", frozenset({"strategy_editor"})))
    store.publish("preloan", version, Actor("a", frozenset({"approver"})))
    lists = write_lists(tmp_path, 300, 5)
    args, card = joint.write_joint_inputs(tmp_path, ["gov", "fin", "telco"], lists, 2000, 3)
    port = free_ports(1)[0]
    procs = start_parties(tmp_path, lists, db, port, None, args, card)
    others = joint.partner_points(tmp_path, ["gov", "fin", "telco"], 2000)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_ready(http, procs, tmp_path)
            for key in ["K1", "K10", "K7", "K1999"]:  # K10: gov does not hold it (default)
                answer = (await http.post("/v1/decisions",
                                          json={"key": key, "fields": FIELDS})).json()
                assert answer["partners_unavailable"] == [] and answer["no_record"] == []
                want = others[int(key[1:])] + joint.bank_card().score_fields(FIELDS)
                assert abs(answer["score"] - want) < 1e-3
            listed = (await http.post("/v1/decisions", json={"key": "K7", "fields": FIELDS}))
            assert listed.json()["reasons"][0].startswith("screens/gov_")  # 7 = 7*1+0: gov
            outside = (await http.post("/v1/decisions",
                                       json={"key": "K5000", "fields": FIELDS})).json()
            assert outside["decision"] == "refer" and outside["score"] is None
            assert outside["no_record"] == ["fin", "gov", "telco"]

    try:
        asyncio.run(main())
    finally:
        stop(procs)
    for partner in ("gov", "fin", "telco"):  # the bank's stop ends every session generation
        assert procs[partner].returncode == 0, (tmp_path / f"{partner}.log").read_text()[-500:]
