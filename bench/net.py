"""``meshmpc bench net``: encrypted mesh throughput and latency, two processes on loopback.

* ``net.bulk``: a 64 MiB array sent repeatedly one way; ``gbytes_per_s`` per direction.
* ``net.small``: 64-byte messages streamed one way (``msgs_per_s``) and ping-ponged
  (``rtt_us_median``).

Each figure is the median over ``--repeats`` runs of real processes over the
real encrypted mesh: AES-256-GCM links, or SM4-GCM with ``--suite gm`` (then the
default suite's figures are printed first, for comparison).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from meshmpc_bench._common import add_common, emit, median, wan_fields, wan_profile

from meshmpc.crypto.gm import sm4_backend
from meshmpc.net.check import ping, pong
from meshmpc.net.context import Context
from meshmpc.net.eventloop import loop_kind
from meshmpc.net.launch import run_local

PARTIES = ["a", "b"]
CIPHERS = {"default": "AES-256-GCM", "gm": "SM4-GCM"}


async def bulk_job(ctx: Context, mib: int, sends: int) -> dict[str, Any]:
    """Party a streams ``sends`` arrays of ``mib`` MiB to b; b acknowledges the last."""
    if ctx.party == "a":
        payload = np.ones(mib << 20, dtype=np.uint8)
        await ctx.exchange("b", "warm", payload)
        start = time.perf_counter()
        for _ in range(sends):
            await ctx.send("b", "bulk", payload)
        await ctx.recv("b", "ack")
        elapsed = time.perf_counter() - start
        return {"gbytes_per_s": sends * payload.nbytes / elapsed / 1e9}
    await ctx.send("a", "warm", await ctx.recv("a", "warm"))
    for _ in range(sends):
        await ctx.recv("a", "bulk")
    await ctx.send("a", "ack", None)
    return {}


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
    args = parser.parse_args(argv)
    env = {"MESHMPC_EVENT_LOOP": args.loop}
    suites = ["default"] if args.suite == "default" else ["default", args.suite]
    for suite in suites:  # the default suite's figures beside the chosen one's
        _bench_suite(args, env, suite)
    return 0


def _bench_suite(args: argparse.Namespace, env: dict[str, str], suite: str) -> None:
    """Bulk and small-message figures of one link suite."""
    common = {"loop": loop_kind(args.loop), "encrypted": True, "suite": suite,
              "cipher": CIPHERS[suite], **wan_fields(args)}
    if suite == "gm":
        common["sm4_library"] = sm4_backend()
    wan = wan_profile(args)
    bulk = [
        run_local(PARTIES, "meshmpc_bench.net:bulk_job", {"mib": args.mib, "sends": args.sends},
                  wan=wan, env=env, pin_cpus=True, suite=suite)["a"]
        for _ in range(args.repeats)
    ]
    emit({"bench": "net.bulk", "mib": args.mib, **common,
          "gbytes_per_s": median([r["gbytes_per_s"] for r in bulk])}, args.json)
    small = [
        run_local(PARTIES, "meshmpc_bench.net:small_job",
                  {"stream": args.stream, "pings": args.pings},
                  wan=wan, env=env, pin_cpus=True, suite=suite)["a"]
        for _ in range(args.repeats)
    ]
    emit({"bench": "net.small", "msg_bytes": 64, **common,
          "msgs_per_s": median([r["msgs_per_s"] for r in small]),
          "rtt_us_median": median([r["rtt_us_median"] for r in small])}, args.json)
