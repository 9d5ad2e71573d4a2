"""Event-loop selection: uvloop when installed, plain asyncio otherwise.

``MESHMPC_EVENT_LOOP=asyncio`` (or ``loop="asyncio"``) forces the standard
loop; both give the same behaviour and the test suite runs on both.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_kind(requested: str | None = None) -> str:
    """The loop that will run: 'uvloop' or 'asyncio'."""
    kind = requested or os.environ.get("MESHMPC_EVENT_LOOP", "auto")
    if kind not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"unknown event loop {kind!r}: use auto, uvloop or asyncio")
    if kind == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if kind == "uvloop":
            raise
        return "asyncio"
    return "uvloop"


def new_loop(requested: str | None = None) -> asyncio.AbstractEventLoop:
    """A fresh event loop of the selected kind."""
    if loop_kind(requested) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T], loop: str | None = None) -> T:
    """Run ``coro`` to completion on a new loop of the selected kind."""
    with asyncio.Runner(loop_factory=lambda: new_loop(loop)) as runner:
        return runner.run(coro)
