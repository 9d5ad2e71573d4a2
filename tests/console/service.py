"""The bank's decision service (``meshmpc credit serve``) on the bank node's own database,
with gov serving a small risk list by keyword PIR, both as processes on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from meshmpc.net import codec
from meshmpc.net.local import make_local_cluster

from .nodes import _port

LISTED = "K-LISTED"


class DecisionService:
    """Started by the test; ``decide`` posts one applicant; ``stop`` ends both processes."""

    def __init__(self, work: Path, db_url: str) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work, self.port = work, _port()
        config, _ = make_local_cluster(["bank", "gov"], work)
        assert config.path is not None
        risk_list = work / "gov.risklist.parquet"
        pq.write_table(pa.table({"credit_code": [LISTED, "K-OTHER"],
                                 "list_type": ["serious_violation"] * 2,
                                 "risk_level": ["high"] * 2,
                                 "listed_date": ["2026-05-01"] * 2}), risk_list)
        (work / "gov.args").write_bytes(codec.pack({"risk_list": str(risk_list)}))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.procs["gov"] = self._start("gov", [
            "-m", "meshmpc.net.launch", "--config", str(config.path), "--party", "gov",
            "--target", "meshmpc_credit.decision.partner:serve_risk_list",
            "--args", str(work / "gov.args"), "--result", str(work / "gov.result")])
        self.procs["bank"] = self._start("bank", [
            "-m", "meshmpc.cli", "credit", "serve", "--config", str(config.path),
            "--party", "bank", "--partners", "gov", "--db", db_url, "--port", str(self.port),
            "--poll", "0.1"])
        self.url = f"http://127.0.0.1:{self.port}"

    def _start(self, party: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{party}.log", "wb")  # noqa: SIM115 - lives with the process
        return subprocess.Popen([sys.executable, *args], stdout=log, stderr=log)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for party, proc in self.procs.items():
                if proc.poll() is not None:
                    tail = (self.work / f"{party}.log").read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"decision service: {party} exited early: {tail}")
            try:
                if httpx.get(self.url + "/v1/strategy", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"decision service not ready in {timeout_s} s; see {self.work}")

    def strategy(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/v1/strategy", timeout=10).json())

    def decide(self, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(self.url + "/v1/decisions", json={"key": key, "fields": fields},
                       timeout=30)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def stop(self) -> None:
        """The bank first (it closes its PIR sessions, so gov's server returns)."""
        import signal

        bank = self.procs["bank"]
        if bank.poll() is None:
            bank.send_signal(signal.SIGINT)
        for proc in (bank, self.procs["gov"]):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
