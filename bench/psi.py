"""PSI benchmark: both parties as separate processes over the real encrypted mesh.

``meshmpc bench psi --rows N --protocol P --overlap 0.5 --json`` writes two
synthetic CSV inputs (credit-code-like keys plus a feature column), runs the
PSI job file in to file out with :func:`meshmpc.net.launch.run_local`, and
prints one JSON line per configuration: the median wall time over
``--repeats`` runs (wall_s: the slowest party, from opening its input to its
output file being in place; mesh set-up excluded and reported as launch_s),
bytes sent by both parties, peak RSS of the biggest party process and the
receiver's per-phase times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from meshmpc_bench import _psi_ray as psi_ray
from meshmpc_bench._common import (
    add_common,
    emit,
    fail,
    median,
    run_spu_peer,
    wan_fields,
    wan_profile,
)

from meshmpc.psi.spec import DEFAULT_BUCKET_ROWS

PARTIES = ["bank", "gov"]


GEN_CHUNK = 1 << 22
KEY_MULTIPLIER = 0x5DEECE66D1  # odd: i -> i * M mod 2^50 is a bijection (distinct keys)


def _codes(ids: np.ndarray) -> pa.Array:
    """Credit-code-like keys: "91" + 16 digits, distinct for distinct ids < 2^50."""
    mixed = (ids.astype(np.uint64) * np.uint64(KEY_MULTIPLIER)) & np.uint64((1 << 50) - 1)
    digits = pc.utf8_lpad(pc.cast(pa.array(mixed), pa.string()), 16, "0")
    return pc.binary_join_element_wise("91", digits, "")


def synthetic_inputs(directory: Path, rows: int, overlap: float, seed: int = 1) -> dict[str, Path]:
    """Two CSVs of ``rows`` rows each sharing ``overlap * rows`` keys (synthetic data).

    bank holds ids [0, rows), gov ids [0, common) and [rows, 2 rows - common);
    written in chunks so that 10^8-row inputs need little memory. Existing
    files with the same name are reused (generation of 10^8 rows is slow).
    """
    rng = np.random.default_rng(seed)
    common = int(round(overlap * rows))
    ranges = {"bank": [(0, rows)], "gov": [(0, common), (rows, 2 * rows - common)]}
    paths = {}
    for party, spans in ranges.items():
        paths[party] = directory / f"{party}-{rows}-{overlap}.csv"
        if paths[party].exists():
            continue
        tmp = paths[party].with_suffix(".partial")
        schema = pa.schema([("credit_code", pa.string()), ("feature", pa.int64())])
        with pacsv.CSVWriter(tmp, schema) as writer:
            for lo, hi in spans:
                for start in range(lo, hi, GEN_CHUNK):
                    ids = np.arange(start, min(start + GEN_CHUNK, hi), dtype=np.int64)
                    feature = pa.array(rng.integers(0, 1000, len(ids)))
                    writer.write_table(pa.table({"credit_code": _codes(ids), "feature": feature}))
        tmp.replace(paths[party])
    return paths


def _jobs(paths: dict[str, Path], directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        party: {
            "input": str(paths[party]), "output": str(directory / f"{party}-aligned.csv"),
            "keys": ["credit_code"], "peers": [p for p in PARTIES if p != party],
            "receiver": "bank", "protocol": args.protocol, "reveal": args.reveal,
            "workers": args.workers, "bucket_rows": args.bucket_rows,
        }
        for party in PARTIES
    }


def _one_run(paths: dict[str, Path], directory: Path, args: argparse.Namespace,
             ray_address: str | None = None) -> dict[str, Any]:
    from meshmpc.net.launch import run_local

    jobs = _jobs(paths, directory, args)
    if ray_address is not None:
        jobs = psi_ray.ray_jobs(jobs, ray_address, args.ray_workers, args.ray_relay)
    start = time.perf_counter()
    results = run_local(PARTIES, "meshmpc.psi.job:run_party_jobs", {"jobs": jobs},
                        wan=wan_profile(args), timeout=args.timeout)
    launch = time.perf_counter() - start
    return {"launch_s": launch, **{p: results[p] for p in PARTIES}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench psi")
    parser.add_argument("--rows", type=int, default=1 << 16)
    parser.add_argument("--protocol", default="ecdh")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--reveal", default="all", choices=["receiver", "all", "cardinality"])
    parser.add_argument("--workers", type=int, default=None, help="group workers per party")
    parser.add_argument("--data-dir", type=Path, help="keep generated inputs here (reused)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before a run is stopped (10^8 rows over WAN need ~20 min)")
    parser.add_argument("--bucket-rows", type=int, default=None, help="rows per PSI bucket")
    parser.add_argument("--ray-workers", type=int, default=None,
                        help="also run on a local Ray cluster with this many worker pairs "
                        "(bench/_psi_ray.py); the single-process run uses the same buckets")
    parser.add_argument("--ray-kill-after", type=float, default=None,
                        help="SIGKILL one Ray worker this many seconds into the Ray run")
    parser.add_argument("--ray-relay", action="store_true",
                        help="gov's workers reached only through gov's listening port")
    parser.add_argument("--compare-spu", metavar="PYTHON", default=None,
                        help="ecdh: then run SecretFlow's ECDH PSI (Curve25519) at the same "
                        "size with this interpreter (a venv holding spu) and add its figures "
                        "and the ratio")
    add_common(parser)
    args = parser.parse_args(argv)
    if args.compare_spu and args.protocol != "ecdh":
        parser.error("--compare-spu compares ECDH PSI: use it with --protocol ecdh")
    if args.ray_workers and args.bucket_rows is None:
        args.bucket_rows = DEFAULT_BUCKET_ROWS
    with tempfile.TemporaryDirectory(prefix="meshmpc-bench-psi-") as tmp:
        directory = Path(tmp)
        data_dir = args.data_dir or directory
        data_dir.mkdir(parents=True, exist_ok=True)
        paths = synthetic_inputs(data_dir, args.rows, args.overlap)
        runs = [_one_run(paths, directory, args) for _ in range(args.repeats)]
        scaled, killed = None, []
        if args.ray_workers:
            address = psi_ray.start_cluster(args.ray_workers)
            scaled, killed = psi_ray.run_scaled(
                lambda: _one_run(paths, directory, args, address), args)
    expected = int(round(args.overlap * args.rows))
    for i, run in enumerate([*runs, *([scaled] if scaled else [])]):
        got = run["bank"]["intersection"]
        if got != expected:
            return fail(f"meshmpc bench psi: run {i + 1} found an intersection of {got} rows, "
                        f"expected {expected} (overlap {args.overlap} of {args.rows} rows): "
                        "the protocol gave a wrong result")
    if scaled is not None:
        emit(psi_ray.record(runs, scaled, killed, args), args.json)
        return 0
    record = _record(runs, args)
    if args.compare_spu:
        record = _compare_spu(args, record)
    emit(record, args.json)
    return 0


def _compare_spu(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    """Run SecretFlow's ECDH PSI (bench/_spu_psi_peer.py) right after ours; add its figures.

    Raises SystemExit with what to do when the interpreter cannot run it.
    """
    script = Path(__file__).with_name("_spu_psi_peer.py")
    spu = run_spu_peer(args.compare_spu, str(script),
                       [str(args.rows), "PROTOCOL_ECDH", "CURVE_25519", str(args.repeats)],
                       "SecretFlow's ECDH PSI", timeout=args.timeout)
    return {**out, **spu, "ratio": round(spu["spu_wall_s"] / out["wall_s"], 3)}


def _record(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    walls = [max(r[p]["wall_s"] for p in PARTIES) for r in runs]
    mid = runs[sorted(range(len(runs)), key=lambda i: walls[i])[len(runs) // 2]]
    return {
        "bench": "psi", "protocol": args.protocol, "rows": args.rows,
        "overlap": args.overlap, "reveal": args.reveal,
        "wall_s": round(median(walls), 4), "wall_runs": [round(w, 3) for w in walls],
        "bytes_sent": sum(mid[p]["bytes_sent"] for p in PARTIES),
        "peak_rss_mb": round(max(mid[p]["peak_rss_mb"] for p in PARTIES), 1),
        "intersection": mid["bank"]["intersection"],
        "launch_s": round(median([r["launch_s"] for r in runs]), 3),
        "cpu_s": {p: mid[p].get("cpu_s") for p in PARTIES},
        "phases": mid["bank"]["phases"], "phases_sender": mid["gov"]["phases"],
        **_x25519_fields(args.protocol),
        **wan_fields(args),
    }


def _x25519_fields(protocol: str) -> dict[str, Any]:
    """For ECDH: which X25519 ran ("mb8-ifma" | "libsodium") and why not mb8 if not.

    The parties choose the same way in the same environment on this machine
    (meshmpc.psi.x25519.choose_path), so the bench process asks it too.
    """
    if protocol not in ("ecdh", "ecdh-mp"):
        return {}
    from meshmpc.psi.x25519 import choose_path

    chosen = choose_path()
    return {"x25519_path": chosen.name, "x25519_mb_reason": chosen.mb_reason}
