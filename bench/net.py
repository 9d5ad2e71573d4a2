"""``meshmpc bench net``: encrypted mesh throughput and latency, two processes on loopback.

* ``net.bulk``: a 64 MiB array sent repeatedly one way; ``gbytes_per_s`` per direction.
* ``net.small``: 64-byte messages streamed one way (``msgs_per_s``) and ping-ponged
  (``rtt_us_median``).

Each figure is the median over ``--repeats`` runs of real processes over the
real encrypted mesh: AES-256-GCM links, or SM4-GCM with ``--suite gm`` (then the
default suite's figures are printed first, for comparison). ``--resume both``
measures each figure with resumable links and with ``resume_grace_s = 0`` in
alternating runs (what resumption costs, under the same load); each line says
which (``resume``). Bulk lines also give each side's CPU seconds per GB, which
the machine's load disturbs far less than the rate; ``--in-process`` runs both
ends of the bulk link in one process without busy-polling, for the total CPU
per GB and the page faults per MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import Any

import numpy as np
from meshmpc_bench._common import add_common, emit, median, wan_fields, wan_profile

from meshmpc.crypto.gm import sm4_backend
from meshmpc.net.check import ping, pong
from meshmpc.net.context import Context
from meshmpc.net.eventloop import loop_kind, new_loop
from meshmpc.net.launch import run_local
from meshmpc.net.local import LOCAL_RESUME_GRACE_S, make_local_cluster
from meshmpc.net.tcp import TcpMesh

PARTIES = ["a", "b"]
CIPHERS = {"default": "AES-256-GCM", "gm": "SM4-GCM"}


async def bulk_job(ctx: Context, mib: int, sends: int) -> dict[str, Any]:
    """Party a streams ``sends`` arrays of ``mib`` MiB to b; b acknowledges the last."""
    if ctx.party == "a":
        payload = np.ones(mib << 20, dtype=np.uint8)
        await ctx.exchange("b", "warm", payload)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(sends):
            await ctx.send("b", "bulk", payload)
        await ctx.recv("b", "ack")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        gbytes = sends * payload.nbytes / 1e9
        return {"gbytes_per_s": gbytes / elapsed, "cpu_s_per_gb": cpu / gbytes}
    await ctx.send("a", "warm", await ctx.recv("a", "warm"))
    cpu = time.process_time()
    for _ in range(sends):
        await ctx.recv("a", "bulk")
    await ctx.send("a", "ack", None)
    return {"cpu_s_per_gb": (time.process_time() - cpu) / (sends * (mib << 20) / 1e9)}


async def small_job(ctx: Context, stream: int, pings: int) -> dict[str, Any]:
    """Stream ``stream`` 64-byte messages a->b, then ping-pong ``pings`` times."""
    message = b"m" * 64
    peer = "b" if ctx.party == "a" else "a"
    await ctx.barrier("start")
    if ctx.party == "a":
        start = time.perf_counter()
        for _ in range(stream):
            await ctx.send(peer, "s", message)
        await ctx.recv(peer, "ack")
        rate = stream / (time.perf_counter() - start)
        rtt = await ping(ctx, peer, pings, message)
        return {"msgs_per_s": rate, "rtt_us_median": rtt * 1e6}
    for _ in range(stream):
        await ctx.recv(peer, "s")
    await ctx.send(peer, "ack", None)
    await pong(ctx, peer, pings)
    return {}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench net", description=__doc__)
    add_common(parser)
    parser.add_argument("--mib", type=int, default=64, help="bulk array size in MiB")
    parser.add_argument("--sends", type=int, default=16, help="bulk arrays per run")
    parser.add_argument("--stream", type=int, default=200_000, help="small messages per run")
    parser.add_argument("--pings", type=int, default=5_000, help="round trips per run")
    parser.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    parser.add_argument("--suite", choices=["default", "gm"], default="default",
                        help="link suite; gm also reports the default suite's figures")
    parser.add_argument("--resume", choices=["on", "off", "both"], default="on",
                        help="resumable links (on), resume_grace_s = 0 (off), or both in "
                        "alternating runs")
    parser.add_argument("--in-process", action="store_true",
                        help="bulk only, both ends in this process without busy-polling: "
                        "CPU seconds per GB of both ends and page faults per MiB")
    args = parser.parse_args(argv)
    if args.in_process:
        _bench_in_process(args)
        return 0
    env = {"MESHMPC_EVENT_LOOP": args.loop}
    suites = ["default"] if args.suite == "default" else ["default", args.suite]
    for suite in suites:  # the default suite's figures beside the chosen one's
        _bench_suite(args, env, suite)
    return 0


async def _bulk_in_process(grace_s: float, mib: int, sends: int) -> dict[str, float]:
    """Both ends of one link in this process: CPU seconds per GB and faults per MiB."""
    config, ids = make_local_cluster(PARTIES, resume_grace_s=grace_s)
    a, b = await asyncio.gather(*(TcpMesh.connect(config, p, ids[p], spin_s=0, on_waiting=None)
                                  for p in PARTIES))
    payload = np.ones(mib << 20, dtype=np.uint8)
    await a.send("b", "warm", payload)
    await b.recv("a", "warm")
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start, cpu = time.perf_counter(), time.process_time()

    async def receive() -> None:
        for _ in range(sends):
            await b.recv("a", "bulk")

    async def send() -> None:
        for _ in range(sends):
            await a.send("b", "bulk", payload)

    await asyncio.gather(send(), receive())
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    await asyncio.gather(a.close(), b.close())
    gbytes = sends * payload.nbytes / 1e9
    return {"gbytes_per_s": gbytes / elapsed, "cpu_s_per_gb": cpu / gbytes,
            "faults_per_mib": faults / (sends * mib)}


def _bench_in_process(args: argparse.Namespace) -> None:
    """``--in-process``: resumption on/off (``--resume``) in alternating runs."""
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.resume]
    loop = new_loop(loop_kind(args.loop))
    runs: dict[bool, list[dict[str, float]]] = {mode: [] for mode in modes}
    try:
        for _ in range(args.repeats):
            for mode in modes:
                grace = LOCAL_RESUME_GRACE_S if mode else 0.0
                runs[mode].append(loop.run_until_complete(
                    _bulk_in_process(grace, args.mib, args.sends)))
    finally:
        loop.close()
    for mode, results in runs.items():
        emit({"bench": "net.bulk_in_process", "mib": args.mib, "loop": loop_kind(args.loop),
              "resume": mode, **{key: median([r[key] for r in results]) for key in results[0]},
              "cpu_s_per_gb_min": min(r["cpu_s_per_gb"] for r in results)}, args.json)


def _bench_suite(args: argparse.Namespace, env: dict[str, str], suite: str) -> None:
    """Bulk and small-message figures of one link suite."""
    common = {"loop": loop_kind(args.loop), "encrypted": True, "suite": suite,
              "cipher": CIPHERS[suite], **wan_fields(args)}
    if suite == "gm":
        common["sm4_library"] = sm4_backend()
    wan = wan_profile(args)
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.resume]

    def runs(target: str, kwargs: dict[str, Any]) -> dict[bool, list[dict[str, Any]]]:
        out: dict[bool, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for _ in range(args.repeats):
            for mode in modes:  # alternating, so both modes see the same load
                out[mode].append(run_local(
                    PARTIES, target, kwargs, wan=wan, env=env, pin_cpus=True, suite=suite,
                    resume_grace_s=None if mode else 0.0))
        return out

    bulk = runs("meshmpc_bench.net:bulk_job", {"mib": args.mib, "sends": args.sends})
    for mode, results in bulk.items():
        emit({"bench": "net.bulk", "mib": args.mib, **common, "resume": mode,
              "gbytes_per_s": median([r["a"]["gbytes_per_s"] for r in results]),
              "sender_cpu_s_per_gb": median([r["a"]["cpu_s_per_gb"] for r in results]),
              "receiver_cpu_s_per_gb": median([r["b"]["cpu_s_per_gb"] for r in results])},
             args.json)
    small = runs("meshmpc_bench.net:small_job", {"stream": args.stream, "pings": args.pings})
    for mode, results in small.items():
        emit({"bench": "net.small", "msg_bytes": 64, **common, "resume": mode,
              "msgs_per_s": median([r["a"]["msgs_per_s"] for r in results]),
              "rtt_us_median": median([r["a"]["rtt_us_median"] for r in results])},
             args.json)
