"""The wrk load generator for ``meshmpc bench credit`` (Debian package ``wrk``).

wrk (C, event-driven) drives ``--clients`` connections with a Lua script that
posts a different synthetic applicant per request. It cannot read answers, so
the version check reads the decision records the service stored (each row's
answer is the JSON the client received) instead of the responses.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

LUA = r"""
local thread_count = 0
function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end
local n = 0
local collateral = {"none", "property", "equipment", "receivables"}
local purpose = {"working_capital", "expansion", "refinancing"}
request = function()
  n = n + 1
  local i = n * 7 + tid * 1000003
  local body = string.format(
    '{"key":"K%d","fields":{"loan_amount":%d,"loan_term_months":%d,"interest_rate":%.2f,' ..
    '"collateral_type":"%s","guarantee_type":"none","loan_purpose":"%s",' ..
    '"relationship_years":%.1f,"avg_deposit_balance_6m":%d}}',
    (i * 7919) % __POPULATION__, 100000 + (i % 59) * 50000, 6 * (1 + i % 6), 3 + (i % 500) / 100,
    collateral[1 + i % 4], purpose[1 + i % 3], (i % 150) / 10, (i % 97) * 10000)
  return wrk.format("POST", "/v1/decisions", {["Content-Type"] = "application/json"}, body)
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, clients: int, seconds: float, work: Path,
            population: int = 150_000) -> dict[str, Any]:
    """Run wrk (applicant keys K0 .. K<population-1>); latency percentiles, rate, failures."""
    script = work / "decide.lua"
    script.write_text(LUA.replace("__POPULATION__", str(int(population))))
    threads = max(1, min(2, clients))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency",
         "--timeout", "10s", "-s", str(script), url], capture_output=True, text=True,
        check=True).stdout
    return parse(out)


def _duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse(out: str) -> dict[str, Any]:
    """p50 / p99 (ms), requests/s, requests, and non-2xx plus socket errors."""
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not (p50 and p99 and rate and total):
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in socket.groups()) if socket else 0
    return {"p50_ms": _duration_ms(p50.group(1)), "p99_ms": _duration_ms(p99.group(1)),
            "per_s": float(rate.group(1)), "requests": int(total.group(1)), "errors": errors}


def stored_decisions(db: str, since: float, work: Path) -> list[dict[str, Any]]:
    """Every decision stored after ``since``, opened with the bank's vault key.

    The service seals each row's context and answers under the bank's vault
    (``<work>/bank.vault``, beside its identity key), so the benchmark reads
    them through :class:`~meshmpc_credit.decision.records.DecisionRecords`.
    """
    import sqlalchemy as sa
    from meshmpc_credit.decision.records import DecisionRecords, decisions_table

    from meshmpc.data.vault import Vault

    records = DecisionRecords(db, Vault.load(work / "bank.vault"))
    with records.engine.connect() as conn:
        rows = conn.execute(sa.select(decisions_table)
                            .where(decisions_table.c.created >= since)).all()
    return [records.loaded(row) for row in rows]


def stored_answers(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """check() rows (created, answer) of the stored ``decisions``."""
    return [{"start": float(d["created"]), "end": float(d["created"]), "ok": True,
             "answer": d["answer"]} for d in decisions]
