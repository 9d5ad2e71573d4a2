"""Stage 5 of the demo: new applicants decided by the decision service with the joint score.

Four processes over the encrypted mesh (:func:`meshmpc.net.launch.run_local`):
each partner publishes its joint PIR table (its risk list and its masked
partial score from the pre-loan job's scorecard, :func:`serve_joint`) and the
bank runs the decision service (the HTTP API in process, ASGI transport) on
the default strategy, published with maker-checker in ``<out>/credit.db``.
Every held-out applicant is posted with its bank fields; each decision costs
one PIR query per partner. The bank also checks the online joint scores
against the batch scores the job computed for the same rows.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meshmpc.jobs.artefacts import read_local_table
from meshmpc.net import Context
from meshmpc.net.launch import run_local
from meshmpc_credit.decision.partner import serve_joint
from meshmpc_credit.strategy.context import BANK_FIELDS

PARTNERS = ("gov", "fin", "telco")
PARTIES = ("bank", *PARTNERS)
CLIENTS = 8


def write_registry(data: Path) -> Path:
    """The demo's stand-in for the public registry of credit codes: every generated firm."""
    keys = pa.concat_arrays([pq.read_table(data / f"{p}.parquet", columns=["credit_code"])
                             .column("credit_code").combine_chunks().cast(pa.string())
                             for p in PARTIES])
    path = data / "registry.parquet"
    pq.write_table(pa.table({"credit_code": pc.unique(keys)}), path)
    return path


def applicants(out: Path) -> tuple[list[dict[str, Any]], list[float]]:
    """The held-out rows as decision requests (each with its purpose and the applicant's
    consent reference, as the bank records them), and their batch joint scores."""
    scores = read_local_table(out / "preloan" / "bank" / "card" / "scores.parquet").to_pandas()
    aligned = read_local_table(out / "preloan" / "bank" / "align" / "aligned.parquet"
                               ).to_pandas()
    test = scores[scores["role"] == 2]
    rows = aligned.iloc[test["row"].to_numpy()]
    requests = [{"key": str(r["credit_code"]),
                 "fields": {f: _plain(r.get(f)) for f in BANK_FIELDS if f in r},
                 "purpose": "credit_approval", "consent_ref": f"demo-consent-{i:06d}"}
                for i, (_, r) in enumerate(rows.iterrows())]
    return requests, [float(s) for s in test["score"]]


def _plain(value: Any) -> Any:
    """A JSON value for one bank field (NaN / missing -> null, numpy -> Python)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


async def party_job(ctx: Context, out: str, registry: str) -> dict[str, Any]:
    """One party of stage 5: a partner serves its joint table; the bank decides."""
    root = Path(out)
    if ctx.party != "bank":
        return await serve_joint(ctx, str(root / "data" / f"{ctx.party}.risklist.parquet"),
                                 str(root / "data" / f"{ctx.party}.parquet"),
                                 str(root / "preloan" / ctx.party / "card" / "scorecard.json"),
                                 universe=registry, partners=",".join(PARTNERS))
    return await _decide_all(ctx, root)


def _bank_vault() -> Any:
    """The bank's local vault (the one its job artefacts are sealed with): decision
    records hold the applicant as a keyed hash and their fields sealed, not in clear."""
    from meshmpc.data.vault import Vault, default_vault_dir

    return Vault.open_or_create(default_vault_dir() / "bank.vault")


async def _decide_all(ctx: Context, root: Path) -> dict[str, Any]:
    import httpx

    from meshmpc_credit.decision.app import create_app
    from meshmpc_credit.decision.joint_score import BankCard, JointRater
    from meshmpc_credit.decision.records import DecisionRecords
    from meshmpc_credit.decision.runtime import StrategyRuntime
    from meshmpc_credit.decision.screens import PartnerScreens
    from meshmpc_credit.decision.service import DecisionService

    url = f"sqlite:///{root / 'credit.db'}"
    runtime = StrategyRuntime(_published_store(url), "preloan")
    runtime.refresh()
    screens = PartnerScreens(ctx, list(PARTNERS), timeout_s=10.0)
    await screens.start()
    rater = JointRater(BankCard.load(root / "preloan" / "bank" / "card" / "scorecard.json"),
                       PARTNERS)
    service = DecisionService(runtime, screens, rater, DecisionRecords(url, _bank_vault()))
    requests, batch = applicants(root)
    transport = httpx.ASGITransport(app=create_app(service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as http:
            answers = await _post_all(http, requests)
    finally:
        service.writer.close()
        await screens.close()
    return _summary(answers, batch)


async def _post_all(http: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Post every applicant, ``CLIENTS`` at a time (the service batches their PIR keys)."""
    gate = asyncio.Semaphore(CLIENTS)

    async def one(body: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            response = await http.post("/v1/decisions", json=body)
            response.raise_for_status()
            return dict(response.json())

    return list(await asyncio.gather(*(one(r) for r in requests)))


def _published_store(url: str) -> Any:
    """The store with the default strategy in service (proposed by one person, approved
    by another: maker-checker), unless a version is already in service."""
    from meshmpc_credit.strategy.document import DEFAULT_STRATEGY
    from meshmpc_credit.strategy.store import Actor, StrategyStore

    store = StrategyStore(url)
    if store.service_state("preloan") is None:
        version = store.propose("preloan", DEFAULT_STRATEGY.read_text(),
                                Actor("demo-analyst", frozenset({"strategy_editor"})))
        store.publish("preloan", version, Actor("demo-approver", frozenset({"approver"})))
    return store


def _summary(answers: list[dict[str, Any]], batch: list[float]) -> dict[str, Any]:
    scored = [(a["score"], b) for a, b in zip(answers, batch, strict=True)
              if a["score"] is not None]
    gap = max((abs(a - b) for a, b in scored), default=float("nan"))
    return {"decisions": {d: sum(a["decision"] == d for a in answers)
                          for d in ("approve", "refer", "decline")},
            "grades": {g: sum(a["grade"] == g for a in answers) for g in "ABCDE"},
            "listed": sum(any(r.startswith("screens/") for r in a["reasons"]) for a in answers),
            "scored": len(scored), "applicants": len(answers),
            "max_gap_to_batch": gap, "strategy_version": answers[0]["strategy_version"]
            if answers else None,
            "median_ms": float(np.median([a["timings_ms"]["screen_score"] for a in answers]))
            if answers else None}


def decide_through_service(out: Path) -> dict[str, Any]:
    """Run stage 5 as four processes; print and return the bank's summary."""
    registry = write_registry(out / "data")
    results = run_local(list(PARTIES), "meshmpc_credit.demo_decide:party_job",
                        {"out": str(out.resolve()), "registry": str(registry.resolve())},
                        timeout=300)
    bank = results["bank"]
    print(f"    {bank['applicants']} new applicants (held-out rows) through `POST /v1/decisions`"
          f" (joint PIR table per partner: one query each for screens + joint score)")
    print(f"    decisions {bank['decisions']}; grades {bank['grades']}; {bank['listed']} hit a "
          f"risk list; strategy v{bank['strategy_version']}")
    print(f"    online joint score = batch score of the job within "
          f"{bank['max_gap_to_batch']:.2e} on {bank['scored']} applicants; median screen+score "
          f"{bank['median_ms']:.1f} ms")
    for partner in PARTNERS:
        r = results[partner]
        print(f"    {partner:<6} published {r['published']} firms ({r['held']} held), "
              f"{r['requests']} PIR requests answered")
    return bank
