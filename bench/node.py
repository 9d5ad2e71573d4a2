"""Node benchmark: start-up time and read-endpoint latency under a real HTTP load generator.

``meshmpc bench node --json`` prints
``{"bench": "node.ready", "ready_s": ...}`` (``meshmpc node serve`` started as its own
process until ``/api/v1/health`` answers; median of ``--repeats``) and
``{"bench": "node.read", "endpoint": ..., "rps": ..., "requests": ..., "p50_ms": ...,
"p99_ms": ..., "errors": ..., "p99_runs_ms": [...]}`` for each read endpoint (medians of
``--repeats`` runs; each run's p99 listed), driven by ``hey`` (Debian's
package; ``make bench`` installs it as root when missing) at ``--rps`` requests per
second from 8 workers for ``--seconds``. The node holds a realistic catalogue
(50 datasets, 200 jobs with 4 parties and 7 steps each, 10,000 audit entries)
so that list endpoints page through real rows. Every request must succeed.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from meshmpc_bench._common import emit, median

from meshmpc.platform.models import Dataset, Job, JobParty, JobStep
from meshmpc.platform.node import Node, init_node

PASSWORD = "bench password 1234"  # noqa: S105 (a throw-away node)
ENDPOINTS = ("/api/v1/health", "/api/v1/jobs?limit=20", "/api/v1/datasets?limit=20",
             "/api/v1/peers")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _populate(node: Node) -> None:
    parties = ["bank", "gov", "fin", "telco"]
    steps = ["align", "bins", "select", "lr", "card", "eval", "predict"]
    with node.db.session() as s:
        for i in range(50):
            s.add(Dataset(name=f"ds{i}", uri=f"/data/ds{i}.parquet", columns=[
                {"name": f"c{j}", "type": "double"} for j in range(30)], row_count=10**6))
        for i in range(200):
            job = Job(id=f"job{i}", name="scorecard", initiator="bank", spec="{}",
                      submitted_by="ana", state="Succeeded")
            job.parties = [JobParty(party=p, approval="approved") for p in parties]
            job.steps = [JobStep(party=p, step=st, state="Succeeded") for p in parties
                         for st in steps]
            s.add(job)
    node.audit.append_many([("job.step", "ana", {"i": i}) for i in range(10_000)])


def _ready_time(node_dir: Path, url: str) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "meshmpc.cli", "node", "serve", "--dir",
                             str(node_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                httpx.get(url + "/api/v1/health", timeout=0.5)
                return time.perf_counter() - start
            except httpx.HTTPError:
                if proc.poll() is not None or time.perf_counter() - start > 60:
                    raise SystemExit("bench node: the node did not start") from None
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(10)


def _load(url: str, token: str, rps: int, seconds: int) -> dict[str, float]:
    workers = 8
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(max(1, rps // workers)),
           "-H", f"Authorization: Bearer {token}", "-o", "csv", url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    latencies = sorted(float(r["response-time"]) * 1000 for r in rows)
    errors = sum(1 for r in rows if r["status-code"] != "200")
    if not latencies:
        raise SystemExit(f"bench node: hey sent nothing to {url}")

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {"requests": len(rows), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "errors": errors,
            "rps": round(len(rows) / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench node", description=__doc__)
    parser.add_argument("--rps", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        raise SystemExit("bench node: needs the `hey` load generator: apt-get install -y hey")
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        config, _ = init_node(Path(tmp) / "bank", "bank", "root", PASSWORD,
                              http_listen=f"127.0.0.1:{port}", password_memory_mb=8)
        node = Node(config)
        node.accounts.create_user("ana", PASSWORD, ["analyst"])
        _populate(node)
        url = f"http://127.0.0.1:{port}"
        ready = [_ready_time(config.directory, url) for _ in range(args.repeats)]
        emit({"bench": "node.ready", "ready_s": round(median(ready), 3)}, args.json)
        proc = subprocess.Popen([sys.executable, "-m", "meshmpc.cli", "node", "serve", "--dir",
                                 str(config.directory)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ})
        try:
            while True:
                try:
                    token = httpx.post(url + "/api/v1/auth/login", timeout=5, json={
                        "name": "ana", "password": PASSWORD, "kind": "token"}).json()["token"]
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            for endpoint in ENDPOINTS:
                runs = [_load(url + endpoint, token, args.rps, args.seconds)
                        for _ in range(args.repeats)]
                failed = sum(r["errors"] for r in runs)
                if failed:
                    raise SystemExit(f"bench node: {failed} failed requests to {endpoint}")
                figures = {k: round(median([r[k] for r in runs]), 2) for k in runs[0]}
                emit({"bench": "node.read", "endpoint": endpoint, **figures,
                      "p99_runs_ms": [r["p99_ms"] for r in runs]}, args.json)
        finally:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
