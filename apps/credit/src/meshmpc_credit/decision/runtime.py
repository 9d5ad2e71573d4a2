"""The strategy versions a running service decides with, updated without a restart.

:class:`ActiveStrategies` is immutable; :class:`StrategyRuntime` holds one
reference to it and replaces the whole object when the store's service row
changes (its ``generation`` is polled every ``poll_s``). A decision reads the
reference once and uses that object to the end, so it finishes on the version
it started with and never mixes two; compiling happens before the swap, once
per version (cached), so a switch costs requests nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from meshmpc_credit.strategy.document import CompiledStrategy
from meshmpc_credit.strategy.store import StrategyStore

log = logging.getLogger("meshmpc_credit.runtime")


@dataclass(frozen=True)
class ActiveStrategies:
    """Champion, optional challenger and the challenger's share of applicant keys."""

    champion: CompiledStrategy
    challenger: CompiledStrategy | None
    share: float
    generation: int

    def pick(self, key: str) -> tuple[str, CompiledStrategy]:
        """("champion" | "challenger", version) for this applicant, by key hash."""
        if self.challenger is not None and key_fraction(key) < self.share:
            return "challenger", self.challenger
        return "champion", self.champion


def key_fraction(key: str) -> float:
    """A stable number in [0, 1) from the applicant key (SHA-256), for traffic splits."""
    digest = hashlib.sha256(b"meshmpc.challenger\x00" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class StrategyRuntime:
    """Loads the versions in service for one strategy and hot-swaps them."""

    def __init__(self, store: StrategyStore, strategy: str, poll_s: float = 0.2) -> None:
        self.store, self.strategy, self.poll_s = store, strategy, poll_s
        self._cache: dict[int, CompiledStrategy] = {}
        self._active: ActiveStrategies | None = None
        self.swaps = 0

    @property
    def active(self) -> ActiveStrategies:
        if self._active is None:
            raise RuntimeError(f"strategy {self.strategy} has no published version; publish "
                               f"one with `meshmpc credit strategy publish`")
        return self._active

    def compiled(self, version: int) -> CompiledStrategy:
        if version not in self._cache:
            self._cache[version] = self.store.compiled(self.strategy, version)
        return self._cache[version]

    def refresh(self) -> bool:
        """Re-read the service row; swap in a new :class:`ActiveStrategies` if it changed."""
        state = self.store.service_state(self.strategy)
        if state is None or (self._active and self._active.generation == state.generation):
            return False
        new = ActiveStrategies(
            champion=self.compiled(state.champion),
            challenger=self.compiled(state.challenger) if state.challenger else None,
            share=state.challenger_share, generation=state.generation)
        self._active = new  # one reference assignment: atomic for every reader
        self.swaps += 1
        log.info("strategy %s: now v%d (challenger %s, share %.2f, generation %d)",
                 self.strategy, state.champion, state.challenger, state.challenger_share,
                 state.generation)
        return True

    async def watch(self) -> None:
        """Poll the store forever (a background task of the service)."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                generation = await asyncio.to_thread(self.store.generation, self.strategy)
                if self._active is None or generation != self._active.generation:
                    await asyncio.to_thread(self.refresh)
            except Exception:  # noqa: BLE001 - a bad poll must not stop hot updates
                log.exception("strategy %s: reloading failed; keeping the version in service",
                              self.strategy)
