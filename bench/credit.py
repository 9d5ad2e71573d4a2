"""Pre-loan decision service benchmark: real PIR partners, real HTTP, hot updates.

``meshmpc bench credit --json [--seconds 60] [--clients 8] [--versions 10]``
starts the three partners (gov, fin, telco) as separate processes, each
serving its joint PIR table (risk-list flags and masked partial score of
every firm of a ``--population`` universe, :mod:`meshmpc_bench._credit_joint`)
over the encrypted mesh on loopback, and the bank's ``meshmpc credit serve``
with its card as a fourth process: every decision runs the screens and the
joint online score on one PIR query per partner (``--score bank``: the
risk lists alone and the bank's own points table, as before). A
closed-loop load generator (``--clients`` connections, each sending the next
request when the last answer arrives) posts applicants for ``--seconds``:
wrk (:mod:`meshmpc_bench._credit_wrk`) when installed, else an httpx-based one
(``--generator``; the printed line names it). Meanwhile the benchmark proposes
and publishes ``--versions`` strategy versions (maker-checker, through the
store) at even intervals.

Every version marks its price bands with its own suffix, so each answer shows
which version decided it. The run fails (exit 1) if any request failed, if
an answer's price band does not belong to the version it names, or if that
version was not in service at some moment of the request, or if a stored
joint score differs from the plaintext recomputation. Printed line:
``{"bench": "credit.decide", "p50_ms", "p99_ms", "per_s", "errors", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from meshmpc_bench._common import add_common, emit, fail, wan_fields, wan_profile

PARTNERS = ["gov", "fin", "telco"]
KINDS = {"gov": ["abnormal_operation", "dishonest_debtor", "serious_violation"],
         "fin": ["multi_lending", "malicious_default", "fraud"],
         "telco": ["unverified_line", "collection_target", "telecom_fraud"]}


def write_lists(directory: Path, rows: int, seed: int) -> dict[str, Path]:
    """Synthetic risk lists: partner p lists keys K<i> with i = p's residue class."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    paths = {}
    for index, partner in enumerate(PARTNERS):
        keys = [f"K{7 * i + index}" for i in range(rows)]
        table = pa.table({"credit_code": keys,
                          "list_type": rng.choice(KINDS[partner], rows).tolist(),
                          "risk_level": rng.choice(["medium", "high"], rows).tolist(),
                          "listed_date": ["2026-05-01"] * rows})
        paths[partner] = directory / f"{partner}.risklist.parquet"
        pq.write_table(table, paths[partner])
    return paths


def version_text(number: int) -> str:
    """The default strategy with every price band suffixed by ``-v<number>``."""
    from meshmpc_credit.strategy.document import DEFAULT_STRATEGY

    doc = json.loads(DEFAULT_STRATEGY.read_text())
    terms = next(n for n in doc["nodes"] if n["name"] == "terms")
    for rule in terms["content"]["rules"]:
        rule["band"] = json.dumps(f"{json.loads(rule['band'])}-v{number}")
    return json.dumps(doc)


def start_parties(work: Path, lists: dict[str, Path], db: str, port: int, wan: Any,
                  joint: dict[str, dict[str, Any]] | None = None, card: Path | None = None,
                  start_timeout: float = 60.0) -> dict[str, subprocess.Popen[bytes]]:
    """Partners via meshmpc.net.launch (joint tables when ``joint`` gives their
    ``serve_joint`` arguments), the bank via ``meshmpc credit serve``."""
    from meshmpc.net import codec
    from meshmpc.net.local import make_local_cluster

    config, _ = make_local_cluster(["bank", *PARTNERS], work, wan=wan,  # slow start-ups
                                   connect_timeout_s=start_timeout)      # on a loaded box
    assert config.path is not None
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MESHMPC_SPIN_US": "0"}
    procs = {}
    for partner in PARTNERS:
        args = work / f"{partner}.args"
        args.write_bytes(codec.pack(joint[partner] if joint else
                                    {"risk_list": str(lists[partner])}))
        target = "serve_joint" if joint else "serve_risk_list"
        log = open(work / f"{partner}.log", "wb")  # noqa: SIM115 - lives with the process
        procs[partner] = subprocess.Popen(
            [sys.executable, "-m", "meshmpc.net.launch", "--config", str(config.path),
             "--party", partner, "--target", f"meshmpc_credit.decision.partner:{target}",
             "--args", str(args), "--result", str(work / f"{partner}.result")],
            stdout=log, stderr=log, env=env)
    log = open(work / "bank.log", "wb")  # noqa: SIM115
    procs["bank"] = subprocess.Popen(
        [sys.executable, "-m", "meshmpc.cli", "credit", "serve", "--config", str(config.path),
         "--party", "bank", "--db", db, "--port", str(port), "--poll", "0.1",
         "--start-timeout", str(start_timeout), *(["--card", str(card)] if card else [])],
        stdout=log, stderr=log, env=env)
    return procs


async def wait_ready(client: Any, procs: dict[str, subprocess.Popen[bytes]], work: Path,
                     timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for party, proc in procs.items():
            if proc.poll() is not None:
                tail = (work / f"{party}.log").read_text(errors="replace")[-800:]
                raise RuntimeError(f"party {party} exited early: {tail}")
        with contextlib.suppress(Exception):  # not listening yet
            if (await client.get("/v1/strategy")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the decision service did not start within {timeout:.0f} s")


def applicant(rng: np.random.Generator, population: int) -> dict[str, Any]:
    """A synthetic application of the universe (3 keys in 7 are on some partner's list)."""
    return {"key": f"K{int(rng.integers(0, population))}", "fields": {
        "loan_amount": float(rng.integers(2, 60) * 50_000),
        "loan_term_months": int(rng.choice([6, 12, 24, 36])),
        "interest_rate": float(np.round(rng.uniform(3.0, 8.0), 2)),
        "collateral_type": str(rng.choice(["none", "property", "equipment", "receivables"])),
        "guarantee_type": str(rng.choice(["none", "personal", "guarantee_company"])),
        "loan_purpose": str(rng.choice(["working_capital", "expansion", "refinancing"])),
        "relationship_years": float(np.round(rng.uniform(0, 15), 1)),
        "avg_deposit_balance_6m": float(rng.integers(0, 100) * 10_000)}}


async def load(client: Any, clients: int, seconds: float, seed: int,
               population: int) -> list[dict[str, Any]]:
    """Closed-loop load: every client sends its next request when its answer arrives."""
    results: list[dict[str, Any]] = []
    end = time.monotonic() + seconds

    async def one(worker: int) -> None:
        rng = np.random.default_rng([seed, worker])
        i = 0
        while time.monotonic() < end:
            body = applicant(rng, population)
            start = time.time()
            try:
                response = await client.post("/v1/decisions", json=body)
                ok = response.status_code == 200
                answer = response.json() if ok else {"status": response.status_code}
            except Exception as exc:  # noqa: BLE001 - counted as a failed request
                ok, answer = False, {"error": repr(exc)}
            results.append({"start": start, "end": time.time(), "ok": ok, "answer": answer})
            i += 1

    await asyncio.gather(*(one(w) for w in range(clients)))
    return results


async def publish_during(store: Any, versions: int, seconds: float) -> dict[int, float]:
    """Publish ``versions`` new versions at even intervals; version -> time in service."""
    from meshmpc_credit.strategy.store import Actor

    author = Actor("bench-editor", frozenset({"strategy_editor"}))
    approver = Actor("bench-approver", frozenset({"approver"}))
    published = {}
    for n in range(versions):
        await asyncio.sleep(seconds / (versions + 1))
        number = n + 2
        version = await asyncio.to_thread(store.propose, "preloan", version_text(number), author)
        await asyncio.to_thread(store.publish, "preloan", version, approver)
        published[version] = time.time()
    return published


def check(results: list[dict[str, Any]], published: dict[int, float]) -> dict[str, int]:
    """Failed requests, answers whose version marker or service window is wrong, and
    answers that could not screen at every partner (a healthy run has none)."""
    starts = sorted(published.items())
    mixed = 0
    for r in results:
        if not r["ok"]:
            continue
        a = r["answer"]
        version = a["strategy_version"]
        if not str(a["price_band"]).endswith(f"-v{version}"):
            mixed += 1
            continue
        began = published.get(version, 0.0)
        after = [t for v, t in starts if v > version]
        ended = min(after) if after else float("inf")
        if began > r["end"] + 0.01 or ended + 1.0 < r["start"]:  # 1 s: poll + clock slack
            mixed += 1
    unavailable = sum(1 for r in results if r["ok"] and (r["answer"]["partners_unavailable"]
                                                        or r["answer"].get("no_record")))
    return {"errors": sum(1 for r in results if not r["ok"]) + unavailable, "mixed": mixed,
            "unavailable": unavailable}


async def drive(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], int]:
    import httpx
    from meshmpc_bench import _credit_joint as credit_joint
    from meshmpc_bench import _credit_wrk as credit_wrk
    from meshmpc_credit.strategy.store import Actor, StrategyStore

    from meshmpc.net.local import free_ports

    generator = args.generator
    if generator == "auto":
        generator = "wrk" if credit_wrk.available() else "httpx"
    db = f"sqlite:///{work / 'credit.db'}"
    store = StrategyStore(db)
    first = store.propose("preloan", version_text(1),
                          Actor("bench-editor", frozenset({"strategy_editor"})))
    store.publish("preloan", first, Actor("bench-approver", frozenset({"approver"})))
    lists = write_lists(work, args.list_rows, 11)
    joint, card = credit_joint.write_joint_inputs(work, PARTNERS, lists, args.population, 5) \
        if args.score == "joint" else (None, None)
    port = free_ports(1)[0]
    procs = start_parties(work, lists, db, port, wan_profile(args), joint, card,
                          args.start_timeout)
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                     timeout=30.0) as client:
            await wait_ready(client, procs, work, args.start_timeout)
            await load(client, args.clients, min(3.0, args.seconds), 99,
                       args.population)  # warm-up
            published: dict[int, float] = {first: 0.0}
            began, since = time.monotonic(), time.time()
            if generator == "wrk":
                url = f"http://127.0.0.1:{port}"
                measured, later = await asyncio.gather(
                    asyncio.to_thread(credit_wrk.run_wrk, url, args.clients, args.seconds,
                                      work, args.population),
                    publish_during(store, args.versions, args.seconds))
                results: list[dict[str, Any]] = []
            else:
                results, later = await asyncio.gather(
                    load(client, args.clients, args.seconds, 7, args.population),
                    publish_during(store, args.versions, args.seconds))
            wall = time.monotonic() - began
            published.update(later)
    finally:
        stop(procs)
    stored = credit_wrk.stored_decisions(db, since, work)
    if generator == "wrk":
        results = credit_wrk.stored_answers(stored)
    latencies = np.array([(r["end"] - r["start"]) * 1e3 for r in results if r["ok"]])
    verdict = check(results, published)
    checked, wrong = credit_joint.expected_scores(stored, work, PARTNERS, args.population) \
        if args.score == "joint" else (0, 0)
    seen = {r["answer"]["strategy_version"] for r in results if r["ok"]}
    stages = {name: _percentile(np.array([r["answer"]["timings_ms"][name] for r in results
                                          if name in r["answer"].get("timings_ms", {})]), 50)
              for name in ("screen_score", "strategy", "record")}
    if generator == "wrk":
        figures = {k: measured[k] for k in ("p50_ms", "p99_ms", "per_s", "errors")}
        figures["errors"] += verdict["errors"]
        count = measured["requests"]
    else:
        figures = {"p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99),
                   "per_s": round(len(latencies) / wall, 2), "errors": verdict["errors"]}
        count = len(results)
    record = {"bench": "credit.decide", **figures,
              "mixed_versions": verdict["mixed"], "requests": count,
              "partner_unavailable": verdict["unavailable"],
              "decisions": {d: sum(1 for r in results if r["ok"]
                                   and r["answer"]["decision"] == d)
                            for d in ("approve", "refer", "decline")},
              "decisions_stored": len(results),
              "versions_published": len(later), "versions_seen": len(seen),
              "clients": args.clients, "seconds": args.seconds, "load_generator": generator,
              "list_rows": args.list_rows, "score": args.score, "population": args.population,
              "scores_checked": checked, "scores_wrong": wrong,
              "median_stage_ms": stages, **wan_fields(args)}
    return record, int(figures["errors"]) + verdict["mixed"] + wrong


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values.size else None


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop the bank (it closes its PIR sessions, so the partners finish), then wait."""
    bank = procs["bank"]
    if bank.poll() is None:
        bank.send_signal(signal.SIGINT)
    for proc in [bank, *(procs[p] for p in PARTNERS)]:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench credit")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured load duration")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--versions", type=int, default=10, help="versions published in load")
    parser.add_argument("--list-rows", type=int, default=10_000, help="rows per risk list")
    parser.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto",
                        help="load generator (auto: wrk when installed, else httpx)")
    parser.add_argument("--score", choices=["joint", "bank"], default="joint",
                        help="joint online score from the partners' joint PIR tables, or the "
                             "bank's own points table over plain risk lists")
    parser.add_argument("--population", type=int, default=50_000,
                        help="firms in the universe the partners publish (applicant keys)")
    parser.add_argument("--start-timeout", type=float, default=180.0,
                        help="seconds for the partners' tables and the service to come up")
    add_common(parser)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.versions < 0:
        return fail("meshmpc bench credit: --seconds > 0, --clients >= 1, --versions >= 0")
    with tempfile.TemporaryDirectory(prefix="meshmpc-credit-bench-") as tmp:
        try:
            record, problems = asyncio.run(drive(args, Path(tmp)))
        except RuntimeError as exc:
            return fail(f"meshmpc bench credit: {exc}")
    emit(record, args.json)
    if problems:
        return fail(f"meshmpc bench credit: {record['errors']} failed requests, "
                    f"{record['mixed_versions']} answers with a wrong version, "
                    f"{record['scores_wrong']} wrong joint scores")
    return 0
