"""Audit log benchmark: append N entries, then time ``meshmpc audit verify`` over them.

``meshmpc bench audit --entries 1000000 --json`` prints
``{"bench": "audit.verify", "entries": ..., "checkpoints": ..., "wall_s": ...,
"append_per_s": ..., "db_mb": ...}``. The verification runs as its own
process through the command line (what an auditor runs), and the benchmark
checks its own result: the untouched log must verify, and the same log with
one entry edited must not.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meshmpc_bench._common import emit, median
from nacl.signing import SigningKey

from meshmpc.net.keys import public_key_to_b64
from meshmpc.platform.audit import AuditLog

BATCH = 10_000


def _fill(url: str, key: SigningKey, entries: int) -> float:
    log = AuditLog(url, "bank", key, checkpoint_every=10_000, checkpoint_seconds=3600)
    start = time.perf_counter()
    for first in range(0, entries, BATCH):
        count = min(BATCH, entries - first)
        log.append_many(("job.step", "analyst", {"job": "bench", "step": i,
                                                  "revealed_to": ["bank"]})
                        for i in range(first, first + count))
    log.checkpoint()
    return entries / (time.perf_counter() - start)


def _verify(url: str, key: SigningKey) -> dict:
    cmd = [sys.executable, "-m", "meshmpc.cli", "audit", "verify", "--db", url, "--party",
           "bank", "--public-key", public_key_to_b64(key.verify_key), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"audit verify failed: {done.stderr.strip()}")
    report: dict = json.loads(done.stdout)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench audit", description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "node.db"
        url = f"sqlite:///{path}"
        append_rate = _fill(url, key, args.entries)
        timings, report = [], {}
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = _verify(url, key)
            timings.append(time.perf_counter() - start)
        if not report["ok"] or report["entries"] != args.entries:
            raise SystemExit(f"bench audit: untouched log failed to verify: {report}")
        conn = sqlite3.connect(path)
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE audit_entries SET actor='mallory' WHERE seq=?", (args.entries // 2,))
        conn.commit()
        if _verify(url, key)["ok"]:
            raise SystemExit("bench audit: an edited entry went undetected")
        emit({"bench": "audit.verify", "entries": args.entries,
              "checkpoints": report["checkpoints"], "wall_s": round(median(timings), 3),
              "append_per_s": round(append_rate), "db_mb": round(path.stat().st_size / 2**20, 1)},
             args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
