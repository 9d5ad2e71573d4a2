"""The TCP mesh: 3- and 4-party meshes on 127.0.0.1, every message shape, both loops."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from meshmpc.net.config import WanProfile
from meshmpc.net.context import Context
from meshmpc.net.local import make_local_cluster
from meshmpc.net.tcp import TcpMesh


async def _start(parties: list[str], **kwargs: Any) -> dict[str, Context]:
    config, identities = make_local_cluster(parties, connect_timeout_s=10, **kwargs)
    meshes = await asyncio.gather(
        *(TcpMesh.connect(config, p, identities[p]) for p in parties)
    )
    return {m.party: Context(m) for m in meshes}


async def _close(ctxs: dict[str, Context]) -> None:
    await asyncio.gather(*(c.mesh.close() for c in ctxs.values()))


@pytest.mark.parametrize("parties", [["bank", "gov", "telco"], ["bank", "gov", "fin", "telco"]])
def test_full_mesh_exchanges_every_message_shape(run_checked, parties: list[str]) -> None:
    big = np.arange(3 << 20, dtype=np.uint32).reshape(3, -1)  # 12 MiB: chunked raw records
    nested = {"ids": [1, 2, 3], "m": np.eye(3), "t": (1, "x")}
    blob = [b"z" * 100_000, list(range(10_000))]  # large inline object: packed blob chunks

    async def job(ctx: Context) -> dict[str, Any]:
        await ctx.broadcast("small", {"from": ctx.party})
        await ctx.broadcast("big", big * (ctx.index + 1))
        await ctx.broadcast("nested", nested)
        await ctx.broadcast("blob", blob)
        got = {
            "small": await ctx.recv_all("small"), "big": await ctx.recv_all("big"),
            "nested": await ctx.recv_all("nested"), "blob": await ctx.recv_all("blob"),
        }
        await ctx.barrier()
        return got

    async def main() -> None:
        ctxs = await _start(parties)
        results = await asyncio.gather(*(job(c) for c in ctxs.values()))
        for party, got in zip(ctxs, results, strict=True):
            for peer in parties:
                if peer == party:
                    continue
                assert got["small"][peer] == {"from": peer}
                assert np.array_equal(got["big"][peer], big * (parties.index(peer) + 1))
                assert got["big"][peer].dtype == np.uint32
                assert got["nested"][peer]["ids"] == [1, 2, 3]
                assert np.array_equal(got["nested"][peer]["m"], np.eye(3))
                assert got["nested"][peer]["t"] == [1, "x"]  # msgpack has no tuples
                assert got["blob"][peer] == blob
            traffic = ctxs[party].traffic()
            assert traffic.bytes_sent > (len(parties) - 1) * big.nbytes
            assert traffic.messages_sent == traffic.messages_received
        await _close(ctxs)

    run_checked(main())


def test_tags_are_independent_channels(run_checked) -> None:
    async def main() -> None:
        ctxs = await _start(["a", "b"])
        a, b = ctxs["a"], ctxs["b"]
        for i in range(100):
            await a.send("b", "even" if i % 2 == 0 else "odd", i)
        odd = [await b.recv("a", "odd") for _ in range(50)]
        even = [await b.recv("a", "even") for _ in range(50)]
        assert odd == list(range(1, 100, 2)) and even == list(range(0, 100, 2))
        s1, s2 = a.scope("psi-1"), b.scope("psi-1")
        await s1.send("b", "x", "scoped")
        await a.send("b", "x", "plain")
        assert await b.recv("a", "x") == "plain"
        assert await s2.recv("a", "x") == "scoped"
        await _close(ctxs)

    run_checked(main())


def test_concurrent_large_and_small_sends_do_not_interleave(run_checked) -> None:
    big = np.random.default_rng(1).integers(0, 2**63, size=1 << 20, dtype=np.uint64)

    async def main() -> None:
        ctxs = await _start(["a", "b"])
        a, b = ctxs["a"], ctxs["b"]

        async def smalls() -> None:
            for i in range(2000):
                await a.send("b", "small", i)

        await asyncio.gather(a.send("b", "big", big), smalls(), a.send("b", "big", big + 1))
        assert [await b.recv("a", "small") for _ in range(2000)] == list(range(2000))
        assert np.array_equal(await b.recv("a", "big"), big)
        assert np.array_equal(await b.recv("a", "big"), big + 1)
        await _close(ctxs)

    run_checked(main())


def test_wan_emulation_caps_bandwidth_and_adds_latency(run_checked) -> None:
    async def main() -> None:
        ctxs = await _start(["a", "b"], wan=WanProfile(bandwidth_mbps=40, latency_ms=20))
        a, b = ctxs["a"], ctxs["b"]
        start = time.perf_counter()
        await a.send("b", "ping", 1)
        await b.recv("a", "ping")
        await b.send("a", "pong", 1)
        await a.recv("b", "pong")
        rtt = time.perf_counter() - start
        assert 0.039 <= rtt < 0.5  # 2 x 20 ms (uvloop's timer has 1 ms granularity)
        payload = np.zeros(1 << 20, dtype=np.uint8)  # 8 Mbit at 40 Mbps: >= 0.2 s
        start = time.perf_counter()
        await a.send("b", "bulk", payload)
        await b.recv("a", "bulk")
        assert time.perf_counter() - start >= 0.2
        await _close(ctxs)

    run_checked(main())


def test_wan_emulation_keeps_record_order_under_load(run_checked) -> None:
    """Many records released within the same millisecond must keep their order."""

    async def main() -> None:
        ctxs = await _start(["a", "b"], wan=WanProfile(bandwidth_mbps=2000, latency_ms=1))
        a, b = ctxs["a"], ctxs["b"]
        payload = np.arange(3 << 20, dtype=np.uint8)

        async def smalls() -> None:
            for i in range(20_000):
                await a.send("b", "s", i)
                if i % 20 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(smalls(), *(a.send("b", "big", payload) for _ in range(4)))
        assert [await b.recv("a", "s") for _ in range(20_000)] == list(range(20_000))
        for _ in range(4):
            assert np.array_equal(await b.recv("a", "big"), payload)
        await _close(ctxs)

    run_checked(main())
