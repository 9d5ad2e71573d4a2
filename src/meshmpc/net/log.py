"""Structured logging for the mesh: one logger, ``event key=value`` messages.

Records go to the ``meshmpc.net`` logger (configure it like any logger:
levels, handlers, JSON formatters reading ``record.event`` and
``record.fields``). Fields are identifiers, addresses, sizes and reasons,
never key material or message contents.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("meshmpc.net")


def event(level: int, name: str, **fields: Any) -> None:
    """Log ``name`` with ``fields`` as ``name k=v ...`` (fields also kept structured)."""
    if not logger.isEnabledFor(level):
        return
    text = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
    logger.log(level, "%s %s", name, text, extra={"event": name, "fields": fields})


def _fmt(value: Any) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


class RateLimit:
    """Lets the first ``burst`` events through, then one in ``every`` (attack floods)."""

    def __init__(self, burst: int = 10, every: int = 1000) -> None:
        self.count = 0
        self.burst = burst
        self.every = every

    def allow(self) -> bool:
        self.count += 1
        return self.count <= self.burst or self.count % self.every == 0
