"""Jobs the hostile-network tests run in party processes, with known answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from meshmpc.net.context import Context


def payload(index: int, round_: int, size: int) -> np.ndarray:
    return np.arange(size, dtype=np.int64) * (index + 1) + round_


def expected_checksum(parties: list[str], party: str, rounds: int, size: int) -> int:
    """What :func:`exchange_rounds` returns at ``party`` when nothing went wrong."""
    return sum(int(payload(i, r, size).sum()) for i, p in enumerate(parties) if p != party
               for r in range(rounds))


async def exchange_rounds(ctx: Context, rounds: int, size: int, pause_s: float = 0.0
                          ) -> dict[str, Any]:
    """Every round, every party sends an array to every other and sums what it gets."""
    checksum = 0
    for r in range(rounds):
        await ctx.broadcast(f"r{r}", payload(ctx.index, r, size))
        for arr in (await ctx.recv_all(f"r{r}")).values():
            checksum += int(arr.sum())
        if pause_s:
            await asyncio.sleep(pause_s)
    return {"checksum": checksum}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def ping_until(ctx: Context, stop_file: str, ready_file: str, size: int = 1000
                     ) -> dict[str, Any]:
    """Ping-pong arrays with the other party until ``stop_file`` exists (the first party
    decides); samples this process's RSS meanwhile. Returns rounds, errors, RSS."""
    peer = ctx.peers[0]
    first = ctx.index == 0
    start_rss = rss_bytes()
    peak, rounds, wrong = start_rss, 0, 0
    Path(ready_file + "." + ctx.party).touch()
    started = time.monotonic()
    while True:
        if first:
            stop = Path(stop_file).exists() or time.monotonic() - started > 600
            await ctx.send(peer, "ping", None if stop else payload(0, rounds, size))
            if stop:
                break
            got = await ctx.recv(peer, "pong")
        else:
            got = await ctx.recv(peer, "ping")
            if got is None:
                break
            await ctx.send(peer, "pong", got)
        wrong += int(not np.array_equal(got, payload(0, rounds, size)))
        rounds += 1
        peak = max(peak, rss_bytes())
        await asyncio.sleep(0.005)
    return {"rounds": rounds, "wrong": wrong, "start_rss": start_rss, "peak_rss": peak,
            "end_rss": rss_bytes()}
