"""Helpers for OT tests: deterministic PRGs and a transcript recorder."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from meshmpc.net import codec
from meshmpc.net.context import Context


class Transcript:
    """SHA-256 over every (sender, receiver, tag, encoded message) sent during a run."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def attach(self, ctx: Context) -> None:
        original = ctx.mesh.send
        party = ctx.party

        async def recording_send(peer: str, tag: str, obj: Any) -> None:
            self._hash.update(f"{party}>{peer}:{tag}:".encode())
            self._hash.update(codec.pack(obj))
            await original(peer, tag, obj)

        ctx.mesh.send = recording_send  # type: ignore[method-assign]

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@pytest.fixture
def transcript() -> Transcript:
    return Transcript()
