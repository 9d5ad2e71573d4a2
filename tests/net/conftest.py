"""Fixtures for the network tests: both event loops, and a strict runner.

``run_checked`` fails a test on any exception the event loop reports as
unhandled and on any task still pending when the test's coroutine returns
(a leaked task), on both uvloop and plain asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from meshmpc.net.eventloop import new_loop

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run_checked(loop_kind: str) -> Runner:
    def runner(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        loop = new_loop(loop_kind)
        unhandled: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
        try:
            result = loop.run_until_complete(asyncio.wait_for(coro, timeout))
            loop.run_until_complete(asyncio.sleep(0.05))  # let closing transports settle
            leaked = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in leaked:
                task.cancel()
            assert not leaked, f"leaked tasks: {leaked}"
            assert not unhandled, f"unhandled event-loop errors: {unhandled}"
            return result
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    return runner
