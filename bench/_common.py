"""Helpers shared by the benchmarks: JSON lines, medians, common options."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from meshmpc.net.config import WanProfile


def emit(record: dict[str, Any], as_json: bool) -> None:
    """Print one result: a JSON object per line with --json, else aligned text."""
    if as_json:
        print(json.dumps(record, sort_keys=False), flush=True)
    else:
        fields = "  ".join(f"{k}={_fmt(v)}" for k, v in record.items() if k != "bench")
        print(f"{record.get('bench', '?'):<16} {fields}", flush=True)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every benchmark takes."""
    parser.add_argument("--json", action="store_true", help="one JSON object per result line")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--wan-mbps", type=float, default=None, help="emulated bandwidth cap")
    parser.add_argument("--wan-latency-ms", type=float, default=0.0, help="added one-way latency")


def model_run_fields(runs: Sequence[dict[str, dict[str, Any]]], parties: Sequence[str]
                     ) -> dict[str, Any]:
    """The fields every model-training benchmark reports from its parties' results
    (each party's ``wall``, ``cpu``, ``sent``, ``peak_rss_mb``; the bank's ``auc`` and
    ``compute``): medians over the runs, the last run's AUC."""
    walls = [max(r[p]["wall"] for p in parties) for r in runs]
    return {
        "wall_s": round(median(walls), 3),
        "cpu_s": round(median([sum(r[p]["cpu"] for p in parties) for r in runs]), 3),
        "bytes_sent": int(median([sum(r[p]["sent"] for p in parties) for r in runs])),
        "bytes_sent_max": int(median([max(r[p]["sent"] for p in parties) for r in runs])),
        "peak_rss_mb": round(max(r[p]["peak_rss_mb"] for r in runs for p in parties), 1),
        "auc": round(float(runs[-1]["bank"]["auc"]), 4),
        "compute_parties": runs[-1]["bank"]["compute"],
        "runs": len(runs), "walls": [round(w, 3) for w in walls],
    }


def wan_profile(args: argparse.Namespace) -> WanProfile | None:
    if args.wan_mbps is None and not args.wan_latency_ms:
        return None
    return WanProfile(args.wan_mbps, args.wan_latency_ms)


def wan_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The network condition, recorded in every result line."""
    if wan_profile(args) is None:
        return {"network": "loopback"}
    return {"network": "wan", "wan_mbps": args.wan_mbps, "wan_latency_ms": args.wan_latency_ms}


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def run_spu_peer(python: str, script: str, argv: Sequence[str], what: str,
                 timeout: float | None = None) -> dict[str, Any]:
    """Run a peer script of SecretFlow / SPU with ``python`` (a venv holding spu, never our
    dependency) and return the JSON object of its last output line.

    Raises SystemExit saying what to do when the interpreter cannot run it or ``what``
    fails there."""
    command = [python, script, *argv]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SystemExit(f"--compare-spu {python}: cannot run it ({exc}); name a "
                         "python interpreter whose venv holds spu") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"--compare-spu {python}: {what} failed ({tail}); check that this "
                         "interpreter's venv holds spu")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
