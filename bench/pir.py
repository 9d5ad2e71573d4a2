"""Keyword PIR benchmark over the real encrypted mesh (two local processes).

``meshmpc bench pir --rows 1048576 --record-bytes 256 --json`` starts the
server party ``fin`` and the client party ``bank`` with
:func:`meshmpc.net.launch.run_local`. The server builds a synthetic risk list
(setup: OPRF of every key, sealing, cuckoo placement, hint), the client
downloads the hint once, then times single-key queries (half present, half
absent) and batches. Printed lines (medians over ``--repeats`` runs):

* ``{"bench": "pir.setup", "wall_s"}`` - server offline phase;
* ``{"bench": "pir.rebuild", "changed_fraction", "wall_s"}`` - the next version
  after that fraction of the records changed (the server then serves it, and
  the client's answers are checked against it);
* ``{"bench": "pir.query", "server_ms", "latency_ms", "hint_bytes",
  "query_bytes", "answer_bytes"}`` - server_ms is the server's compute for
  the PIR answer, latency_ms the client's wall time for OPRF + PIR rounds,
  bytes as counted on the wire (frames included) per query;
* ``{"bench": "pir.batch", "keys", "wall_s"}`` - one batch, end to end.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from meshmpc_bench._common import emit, fail, median

from meshmpc.net import Context

PARTIES = ["fin", "bank"]


def synthetic_keys(rows: int) -> list[bytes]:
    """Credit-code-like keys, the same on both sides without sending them."""
    return [b"91310000%010d" % i for i in range(rows)]


def synthetic_records(rows: int, record_bytes: int, seed: int) -> list[bytes]:
    """Records of random length up to the declared maximum (synthetic data)."""
    rng = np.random.default_rng(seed)
    blob = rng.integers(0, 256, rows * record_bytes, dtype=np.uint8).tobytes()
    lengths = rng.integers(record_bytes // 2, record_bytes + 1, rows)
    return [blob[i * record_bytes : i * record_bytes + int(n)] for i, n in enumerate(lengths)]


async def party_job(ctx: Context, **kw: Any) -> dict[str, Any]:
    """run_local entry point: ``fin`` serves, ``bank`` queries."""
    if ctx.party == "fin":
        return await _server(ctx, **kw)
    return await _client(ctx, **kw)


async def _server(ctx: Context, rows: int, record_bytes: int, setup_repeats: int,
                  changed: float, **_: Any) -> dict[str, Any]:
    from meshmpc.pir import PirServer, build_database
    from meshmpc.pir.rebuild import rebuild_database

    keys, records = synthetic_keys(rows), synthetic_records(rows, record_bytes, 1)
    setup = []
    for _run in range(setup_repeats):
        start = time.perf_counter()
        database = build_database(keys, records, record_bytes)
        setup.append(time.perf_counter() - start)
    step = max(1, round(1 / changed)) if changed > 0 else 0
    updated = list(records)
    for i in range(0, rows, step) if step else []:
        updated[i] = b"changed-%d" % i
    start = time.perf_counter()
    database = rebuild_database(database, keys, updated, record_bytes)
    rebuild = time.perf_counter() - start
    await ctx.send("bank", "ready", [i for i in range(0, rows, step)][:64] if step else [])
    await PirServer(database).serve(ctx, "bank")
    return {"setup_s": setup, "rebuild_s": rebuild}


async def _client(ctx: Context, rows: int, batch: int, repeats: int,
                  **_: Any) -> dict[str, Any]:
    from meshmpc.pir import PirClient

    keys = synthetic_keys(rows)
    changed_rows = await ctx.recv("fin", "ready")
    client = PirClient(ctx, "fin")
    before = ctx.traffic().bytes_received
    await client.refresh()
    out: dict[str, Any] = {"hint_bytes": ctx.traffic().bytes_received - before}
    await client.query([keys[0]])  # warm-up (page faults, thread start)
    singles = []
    for r in range(repeats):
        key = keys[(r * 7919) % rows] if r % 2 == 0 or not rows else b"absent-%d" % r
        sent, received = ctx.traffic().bytes_sent, ctx.traffic().bytes_received
        start = time.perf_counter()
        hit = (await client.query([key]))[0]
        latency = (time.perf_counter() - start) * 1e3
        if hit.found != key.startswith(b"9131"):
            raise RuntimeError(f"wrong answer for {key!r}")
        singles.append({"latency_ms": latency, "server_ms": client.last_compute_ms,
                        "query_bytes": ctx.traffic().bytes_sent - sent,
                        "answer_bytes": ctx.traffic().bytes_received - received})
    out["singles"] = singles
    for row in changed_rows[:8]:  # the rebuilt version serves the changed records
        (hit,) = await client.query([keys[row]])
        if hit.record != b"changed-%d" % row:
            raise RuntimeError(f"rebuilt table gives the old record for row {row}")
    out["batch_s"] = [await _one_batch(client, keys, batch, r) for r in range(repeats)]
    await client.close()
    return out


async def _one_batch(client: Any, keys: list[bytes], size: int, round_: int) -> float:
    present = [keys[(round_ * 104729 + i * 7919) % len(keys)] for i in range(size // 2)] \
        if keys else []
    asked = present + [b"absent-%d-%d" % (round_, i) for i in range(size - len(present))]
    start = time.perf_counter()
    hits = await client.query(asked)
    wall = time.perf_counter() - start
    if [h.found for h in hits] != [k.startswith(b"9131") for k in asked]:
        raise RuntimeError("batch answer mismatch")
    return wall


BREAKDOWN = {
    "meshmpc.pir.table": ["key_digests", "prf_outputs", "materials", "seal_all", "_geometry",
                          "_write_slots", "record_digests", "check_records"],
    "meshmpc.pir.lwe": ["hint"],
}
"""Functions whose wall and CPU time ``--setup-breakdown`` reports (prf_outputs is the
OPRF: hash to curve, X25519 and H2 in one C pass per batch)."""


def setup_breakdown(rows: int, record_bytes: int) -> dict[str, Any]:
    """One in-process database build with wall / CPU seconds (every thread) per stage."""
    import importlib

    from meshmpc.pir import build_database

    spent: dict[str, list[float]] = {}
    saved = []
    for module_name, names in BREAKDOWN.items():
        module = importlib.import_module(module_name)
        for name in names:
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, _timed(getattr(module, name), spent.setdefault(name, [0, 0])))
    keys, records = synthetic_keys(rows), synthetic_records(rows, record_bytes, 1)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        build_database(keys, records, record_bytes)
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)
    return {"bench": "pir.setup_breakdown", "rows": rows,
            "wall_s": round(time.perf_counter() - start, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
            "stages": {k: {"wall_s": round(w, 2), "cpu_s": round(c, 2)}
                       for k, (w, c) in spent.items() if w}}


def _timed(fn: Any, acc: list[float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[0] += time.perf_counter() - start
            acc[1] += time.process_time() - cpu
    return timed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench pir")
    parser.add_argument("--rows", type=int, default=1 << 20)
    parser.add_argument("--record-bytes", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1000, help="keys per batch")
    parser.add_argument("--repeats", type=int, default=5, help="queries and batches timed")
    parser.add_argument("--setup-repeats", type=int, default=3, help="database builds timed")
    parser.add_argument("--changed", type=float, default=0.01,
                        help="fraction of records changed before the timed rebuild")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--setup-breakdown", action="store_true",
                        help="only one in-process build, with wall and CPU time per stage")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1 or args.setup_repeats < 1:
        return fail("meshmpc bench pir: --rows, --repeats, --setup-repeats must be >= 1")
    if args.setup_breakdown:
        emit(setup_breakdown(args.rows, args.record_bytes), args.json)
        return 0
    from meshmpc.net.launch import run_local

    kwargs = {"rows": args.rows, "record_bytes": args.record_bytes, "batch": args.batch,
              "repeats": args.repeats, "setup_repeats": args.setup_repeats,
              "changed": args.changed}
    results = run_local(PARTIES, "meshmpc_bench.pir:party_job", kwargs, timeout=3600.0)
    server, client = results["fin"], results["bank"]
    singles = client["singles"]
    emit({"bench": "pir.setup", "wall_s": median(server["setup_s"])}, args.json)
    emit({"bench": "pir.rebuild", "changed_fraction": args.changed,
          "wall_s": server["rebuild_s"]}, args.json)
    emit({"bench": "pir.query",
          "server_ms": median([s["server_ms"] for s in singles]),
          "latency_ms": median([s["latency_ms"] for s in singles]),
          "hint_bytes": client["hint_bytes"],
          "query_bytes": int(median([s["query_bytes"] for s in singles])),
          "answer_bytes": int(median([s["answer_bytes"] for s in singles]))}, args.json)
    emit({"bench": "pir.batch", "keys": args.batch, "wall_s": median(client["batch_s"])},
         args.json)
    return 0
