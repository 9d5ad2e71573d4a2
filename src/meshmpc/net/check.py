"""Link probes: latency and throughput of every link of the mesh.

Every party runs :func:`probe_links` at the same time. For each pair, the
party listed first measures: it ping-pongs small messages (round-trip time)
and streams a bulk array that the other acknowledges (throughput); the other
party answers. Both ends report the figures for their link.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import numpy as np

from meshmpc.errors import MeshMPCError
from meshmpc.net.context import Context


class MeshCheckError(MeshMPCError, RuntimeError):
    """The link check could not run: parameters differ, or it timed out."""


async def ping(ctx: Context, peer: str, count: int, message: object = b"") -> float:
    """Median round-trip time in seconds of ``count`` ping-pongs with ``peer``
    (which runs :func:`pong`)."""
    rtts = []
    for _ in range(count):
        start = time.perf_counter()
        await ctx.send(peer, "ping", message)
        await ctx.recv(peer, "pong")
        rtts.append(time.perf_counter() - start)
    return statistics.median(rtts)


async def pong(ctx: Context, peer: str, count: int) -> None:
    """Answer ``count`` pings from ``peer``."""
    for _ in range(count):
        await ctx.send(peer, "pong", await ctx.recv(peer, "ping"))


async def _measure(ctx: Context, peer: str, pings: int, bulk: np.ndarray, repeats: int) -> dict:
    rtt = await ping(ctx, peer, pings)
    start = time.perf_counter()
    for _ in range(repeats):
        await ctx.send(peer, "bulk", bulk)
    await ctx.recv(peer, "bulk-ack")
    elapsed = time.perf_counter() - start
    result = {
        "rtt_us_median": rtt * 1e6,
        "gbytes_per_s": repeats * bulk.nbytes / elapsed / 1e9,
    }
    await ctx.send(peer, "result", result)
    return result


async def _answer(ctx: Context, peer: str, pings: int, repeats: int) -> dict:
    await pong(ctx, peer, pings)
    for _ in range(repeats):
        await ctx.recv(peer, "bulk")
    await ctx.send(peer, "bulk-ack", None)
    result: dict = await ctx.recv(peer, "result")
    return result


async def agree_parameters(ctx: Context, params: dict[str, int]) -> None:
    """Exchange ``params`` with every peer; raise naming the first difference."""
    theirs = await _exchange(ctx, params)
    for peer, other in theirs.items():
        for name, mine in params.items():
            value = other.get(name) if isinstance(other, dict) else None
            if value != mine:
                flag = "--" + name.replace("_", "-")
                raise MeshCheckError(
                    f"party {ctx.party}: {flag} differs from party {peer}: {ctx.party} has "
                    f"{mine}, {peer} has {value}; run every party with the same {flag}")


async def _exchange(ctx: Context, params: dict[str, int]) -> dict[str, Any]:
    scoped = ctx.scope("mesh-check-params")
    await scoped.broadcast("params", params)
    return await scoped.recv_all("params")


async def probe_links(
    ctx: Context, pings: int = 200, bulk_mib: int = 16, repeats: int = 4,
    timeout_s: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-peer ``{"rtt_us_median", "gbytes_per_s"}`` for this party's links.

    Links are measured one at a time (all parties step through the pairs in
    the same order, with a barrier between pairs), so one link's bulk
    transfer does not disturb another link's latency figure. With
    ``timeout_s``, a check still running after that long raises
    :class:`MeshCheckError`.
    """
    try:
        return await asyncio.wait_for(_probe(ctx, pings, bulk_mib, repeats), timeout_s)
    except TimeoutError:
        raise MeshCheckError(f"party {ctx.party}: the link check did not finish within "
                             f"{timeout_s:g} s; are all parties running mesh check?") from None


async def _probe(ctx: Context, pings: int, bulk_mib: int,
                 repeats: int) -> dict[str, dict[str, Any]]:
    await agree_parameters(ctx, {"pings": pings, "bulk_mib": bulk_mib, "repeats": repeats})
    scoped = ctx.scope("mesh-check")
    bulk = np.zeros(bulk_mib * (1 << 20), dtype=np.uint8)
    results: dict[str, dict[str, Any]] = {}
    for i, first in enumerate(ctx.parties):
        for second in ctx.parties[i + 1 :]:
            if ctx.party == first:
                results[second] = await _measure(scoped, second, pings, bulk, repeats)
            elif ctx.party == second:
                results[first] = await _answer(scoped, first, pings, repeats)
            await ctx.barrier(f"mesh-check/{first}/{second}")
    return results


async def mesh_report(ctx: Context, pings: int = 200, bulk_mib: int = 16) -> dict[str, Any]:
    """The first demo job: every link's figures plus this party's traffic."""
    links = await probe_links(ctx, pings=pings, bulk_mib=bulk_mib)
    return {"party": ctx.party, "links": links, "traffic": ctx.traffic().as_dict()}
