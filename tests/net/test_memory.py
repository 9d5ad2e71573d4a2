"""The in-memory mesh: same API and semantics as TCP, failures propagate."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc.net import Context, run_parties
from meshmpc.net.errors import PeerDisconnectedError


async def _ring(ctx: Context, n: int) -> dict:
    right = ctx.parties[(ctx.index + 1) % len(ctx.parties)]
    left = ctx.parties[(ctx.index - 1) % len(ctx.parties)]
    await ctx.send(right, "token", np.full(n, ctx.index, dtype=np.int64))
    got = await ctx.recv(left, "token")
    await ctx.barrier()
    return {"got": int(got[0]), "bytes": ctx.traffic().bytes_sent}


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_ring_exchange_and_byte_counts(loop: str) -> None:
    out = run_parties(["a", "b", "c", "d"], _ring, 100_000, loop=loop)
    assert [out[p]["got"] for p in "abcd"] == [3, 0, 1, 2]
    assert all(out[p]["bytes"] >= 800_000 for p in "abcd")


def test_received_arrays_do_not_alias_the_senders() -> None:
    async def job(ctx: Context) -> int:
        arr = np.zeros(100_000, dtype=np.uint8)
        if ctx.party == "a":
            await ctx.send("b", "x", arr)
            arr[:] = 1  # mutating after send must not change what b got
            return 0
        return int((await ctx.recv("a", "x")).sum())

    assert run_parties(["a", "b"], job)["b"] == 0


def test_failing_party_makes_the_others_fail_not_hang() -> None:
    async def job(ctx: Context) -> None:
        if ctx.party == "b":
            raise RuntimeError("disk full")
        await ctx.recv("b", "never")

    with pytest.raises((RuntimeError, PeerDisconnectedError)):
        run_parties(["a", "b", "c"], job)


def test_unknown_peer_is_a_clear_error() -> None:
    async def job(ctx: Context) -> None:
        await ctx.send("nobody", "x", 1)

    with pytest.raises(ValueError, match="unknown peer 'nobody'"):
        run_parties(["a", "b"], job)


def test_subgroup_sees_only_its_parties_over_the_same_links() -> None:
    async def job(ctx: Context) -> list[str] | None:
        if ctx.party == "c":
            await ctx.send("a", "x", "from c")
            return None
        group = ctx.subgroup(["b", "a"])
        await group.broadcast("hello", ctx.party)
        got = await group.recv_all("hello")
        if ctx.party == "a":
            assert await ctx.recv("c", "x") == "from c"
        with pytest.raises(ValueError, match="unknown peer 'c'"):
            await group.send("c", "x", 1)
        return [*group.parties, *got.values()]

    out = run_parties(["a", "b", "c"], job)
    assert out["a"] == ["a", "b", "b"] and out["b"] == ["a", "b", "a"]
