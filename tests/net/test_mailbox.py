"""Mailbox: per-(peer, tag) queues, failures, and forgetting a finished session."""

from __future__ import annotations

import asyncio

import pytest

from meshmpc.net.errors import PeerDisconnectedError
from meshmpc.net.mailbox import Mailbox


def test_messages_are_queued_per_peer_and_tag_in_order() -> None:
    async def scenario() -> None:
        box = Mailbox()
        box.deliver("gov", "a", 1)
        box.deliver("gov", "a", 2)
        box.deliver("fin", "a", 3)
        assert box.pending() == {("gov", "a"): 2, ("fin", "a"): 1}
        assert [await box.get("gov", "a"), await box.get("gov", "a")] == [1, 2]
        assert await box.get("fin", "a") == 3
        assert box.pending() == {}

    asyncio.run(scenario())


def test_a_failure_fails_waiting_and_later_receives() -> None:
    async def scenario() -> None:
        box = Mailbox()
        waiting = asyncio.ensure_future(box.get("gov", "x"))
        await asyncio.sleep(0)
        error = PeerDisconnectedError("gov", "closed")
        box.fail("gov", error)
        with pytest.raises(PeerDisconnectedError):
            await waiting
        with pytest.raises(PeerDisconnectedError):
            await box.get("gov", "y")
        assert box.failure("gov") is error
        assert box.failure("fin") is None

    asyncio.run(scenario())


def test_forget_clears_the_failure_and_leftovers_of_that_peer_only() -> None:
    async def scenario() -> None:
        box = Mailbox()
        box.deliver("gov", "old/1", "stale")
        box.deliver("gov", "old/2", "stale")
        box.deliver("gov", "old/2", "stale")
        box.deliver("fin", "keep", "fresh")
        box.fail("gov", PeerDisconnectedError("gov", "session over"))
        box.fail("telco", PeerDisconnectedError("telco", "down"))
        assert box.forget("gov") == 3
        assert box.failure("gov") is None
        assert box.pending() == {("fin", "keep"): 1}
        assert box.failure("telco") is not None
        # the peer's next session receives normally
        box.deliver("gov", "new", "hello")
        assert await box.get("gov", "new") == "hello"
        assert await box.get("fin", "keep") == "fresh"
        assert box.forget("nobody") == 0

    asyncio.run(scenario())
