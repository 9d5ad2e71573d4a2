"""Where a party's wall time goes during a protocol: computing, or blocked on its links.

:class:`MessageClock` wraps a Context's ``send`` and ``recv`` (benchmarks only: the
protocol code is unchanged) and adds up the seconds this party spent blocked in
them, the messages and bytes each way, and the receives that had to wait (each
one a round trip, or the peer computing). With ``trace`` set it also writes one
line per message (time since start, this process's CPU seconds, peer, tag, bytes,
seconds blocked), so that a run can be read step by step afterwards.

For a two-party protocol that alternates between the parties, with both clocks
started at the same moment (after a barrier), the time the link itself cost is
what the one party waited beyond what the other computed::

    link_s = blocked_s(bank) - busy_s(partner),   busy_s = wall_s - blocked_s

(``link_s_estimate``): latency, serialisation at the capped bandwidth, and any
stall of the transport. Other load on the machine slows the computing, not this
difference, so it is far steadier than the wall time; what the two parties
compute at the same time (a little, at the start of a tree) makes it read a
second or two low on a loaded machine (-1.4 s on loopback at load 20-25).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

WAITED_S = 0.001
"""A receive blocked longer than this counts as a waited-for message."""


def _nbytes(obj: Any) -> int:
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values()) + 8 * len(obj)
    if isinstance(obj, list | tuple):
        return sum(_nbytes(v) for v in obj) + 8
    return len(obj) if isinstance(obj, bytes | str) else 8


class MessageClock:
    """Blocked time and message counts of one party (wraps ``ctx.send``/``ctx.recv``)."""

    def __init__(self, ctx: Any, trace: Path | None = None) -> None:
        self.start = time.perf_counter()
        self.blocked_s = 0.0
        self._pending, self._since = 0, self.start
        self.sent = self.received = self.waited = 0
        self.bytes_out = self.bytes_in = 0
        self._log: TextIO | None = None
        if trace is not None:
            trace.mkdir(parents=True, exist_ok=True)
            self._log = open(trace / f"{ctx.party}.log", "w", buffering=1)  # noqa: SIM115
        self._send, self._recv = ctx.send, ctx.recv
        ctx.send, ctx.recv = self.send, self.recv

    async def send(self, peer: str, tag: str, obj: Any) -> None:
        t = self._enter()
        try:
            await self._send(peer, tag, obj)
        finally:
            self._leave()
        self._account("send", peer, tag, obj, time.perf_counter() - t)

    async def recv(self, peer: str, tag: str) -> Any:
        t = self._enter()
        try:
            obj = await self._recv(peer, tag)
        finally:
            self._leave()
        self._account("recv", peer, tag, obj, time.perf_counter() - t)
        return obj

    def _enter(self) -> float:
        """One more pending send/recv; blocked time runs while any is pending (the bank
        waits on its partners concurrently: their waits overlap, not add)."""
        now = time.perf_counter()
        if self._pending == 0:
            self._since = now
        self._pending += 1
        return now

    def _leave(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self.blocked_s += time.perf_counter() - self._since

    def _account(self, way: str, peer: str, tag: str, obj: Any, blocked: float) -> None:
        size = _nbytes(obj)
        if way == "send":
            self.sent, self.bytes_out = self.sent + 1, self.bytes_out + size
        else:
            self.received, self.bytes_in = self.received + 1, self.bytes_in + size
            self.waited += blocked > WAITED_S
        if self._log is not None:
            op = obj.get("op", "") if isinstance(obj, dict) else ""
            self._log.write(f"{time.perf_counter() - self.start:10.3f} "
                            f"cpu={time.process_time():9.2f} {way} {peer} {tag} {op} "
                            f"{size}B blocked={blocked:.3f}\n")

    def summary(self) -> dict[str, float | int]:
        """Wall, blocked and busy seconds since the clock started; message counts."""
        wall = time.perf_counter() - self.start
        if self._log is not None:
            self._log.close()
            self._log = None
        return {"wall_s": round(wall, 3), "blocked_s": round(self.blocked_s, 3),
                "busy_s": round(wall - self.blocked_s, 3), "sent": self.sent,
                "received": self.received, "waited_receives": self.waited,
                "payload_bytes_out": self.bytes_out, "payload_bytes_in": self.bytes_in}


def link_estimate(clocks: dict[str, dict[str, Any]], first: str) -> float | None:
    """``link_s_estimate`` of a two-party run (None for more parties)."""
    if len(clocks) != 2:
        return None
    other = next(p for p in clocks if p != first)
    return round(float(clocks[first]["blocked_s"]) - float(clocks[other]["busy_s"]), 3)
