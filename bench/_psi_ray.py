"""PSI scale-out benchmark: the same bucketed job in one process per party, then on Ray.

``meshmpc bench psi --rows N --protocol kkrt --ray-workers 2 --json`` starts a
local Ray cluster on loopback (this process is its head; the two parties join
it as drivers, each running its workers on it as if on its own cluster), runs
the job once single-process and once with ``ray: {workers: W}`` on the same
inputs and bucket size, checks both intersections, and prints one JSON line:
both wall times and their ratio, the worker pairs, each worker's peak RSS and
the retries. ``--ray-kill-after S`` SIGKILLs one running worker S seconds into
the Ray run (the retry case: the run must still finish with the exact result).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from meshmpc_bench._common import median

PARTIES = ["bank", "gov"]


def start_cluster(workers: int) -> str:
    """A local Ray head for both parties' workers; returns its address for the parties."""
    import ray

    ray.init(num_cpus=2 * workers, object_store_memory=200 * 1024 * 1024,
             include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return str(ray.get_runtime_context().gcs_address)


def pair_worker_pids() -> list[int]:
    """Live processes running a PairWorker (their Ray process title names the method)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if b"PairWorker.run" in fh.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _killer(after_s: float, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL one running worker once ``after_s`` has passed (and one is running)."""
    if stop.wait(after_s):
        return
    while not stop.is_set():
        pids = pair_worker_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
            return
        time.sleep(0.05)


def ray_jobs(jobs: dict[str, Any], address: str, workers: int,
             relay: bool = False) -> dict[str, Any]:
    """The same jobs with a ``ray:`` setting (one CPU per worker, this bench's head);
    ``relay``: gov's workers only through gov's listening port."""
    setting = {"address": address, "workers": workers, "cpus": 1.0}
    return {p: {**job, "ray": {**setting, "relay": relay and p == "gov"}, "quiet": True}
            for p, job in jobs.items()}


def run_scaled(one_run: Any, args: argparse.Namespace) -> tuple[dict[str, Any], list[int]]:
    """One Ray run (with the optional kill); returns the run and the killed PIDs."""
    killed: list[int] = []
    stop = threading.Event()
    thread = None
    if args.ray_kill_after is not None:
        thread = threading.Thread(target=_killer, args=(args.ray_kill_after, killed, stop))
        thread.start()
    try:
        return one_run(), killed
    finally:
        stop.set()
        if thread is not None:
            thread.join()


def record(single: list[dict[str, Any]], scaled: dict[str, Any], killed: list[int],
           args: argparse.Namespace) -> dict[str, Any]:
    """The result line: both walls, their ratio, worker memory and retries."""
    single_wall = median([max(r[p]["wall_s"] for p in PARTIES) for r in single])
    ray_wall = max(scaled[p]["wall_s"] for p in PARTIES)
    scale = {p: scaled[p].get("scale") or {} for p in PARTIES}
    workers_rss = [m for p in PARTIES for m in scale[p].get("worker_peak_rss_mb", [])]
    return {
        "bench": "psi_ray", "protocol": args.protocol, "rows": args.rows,
        "overlap": args.overlap, "bucket_rows": args.bucket_rows,
        "ray_workers": args.ray_workers, "intersection": scaled["bank"]["intersection"],
        "single_wall_s": round(single_wall, 3), "ray_wall_s": round(ray_wall, 3),
        "ray_over_single": round(ray_wall / single_wall, 3) if single_wall else None,
        "single_peak_rss_mb": round(max(r[p]["peak_rss_mb"] for r in single
                                        for p in PARTIES), 1),
        "coordinator_peak_rss_mb": round(max(scaled[p]["peak_rss_mb"] for p in PARTIES), 1),
        "worker_peak_rss_mb": round(max(workers_rss), 1) if workers_rss else None,
        "worker_peak_rss_each_mb": workers_rss,
        "attempts": {p: scale[p].get("attempts") for p in PARTIES},
        "retries": {p: [{"attempt": r["attempt"], "buckets": len(r["items"])}
                        for r in scale[p].get("retries", [])] for p in PARTIES},
        "killed_workers": len(killed),
        "bucket_s_mean": {p: scale[p].get("bucket_s_mean") for p in PARTIES},
        "bucket_bytes_sent_mean": {p: scale[p].get("bucket_bytes_sent_mean") for p in PARTIES},
        "relayed_links": scale["gov"].get("relayed_links", 0),
        "ray_stages_bank": {k: scale["bank"].get(k) for k in
                            ("start_s", "run_s", "concatenate_s")},
        "bytes_sent": sum(scaled[p]["bytes_sent"] for p in PARTIES),  # workers' included
        "bytes_sent_single": sum(single[0][p]["bytes_sent"] for p in PARTIES),
        "phases_single": single[0]["bank"]["phases"], "phases_ray": scaled["bank"]["phases"],
        "load_avg": Path("/proc/loadavg").read_text().split()[:3],
    }
