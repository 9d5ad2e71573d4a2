"""Rendered list pages kept until a write to one of their tables commits (read endpoints are hot).

The console polls the job, peer and dataset lists every few seconds on every
open tab, and the read target is p99 <= 50 ms at 200 requests/s on a shared
two-core machine: a page is rendered (queried and JSON-encoded) once and
served as bytes until a table it was built from changes.

:class:`TableVersions` counts writes per table. The engine tells it which
tables a connection wrote (INSERT/UPDATE/DELETE statements, ORM flushes
included); the count moves when that connection goes back to the pool, which
is after its commit or rollback. A reader takes the versions *before* it
queries, so a page rendered from data older than a commit is always stored
under an older version than the one readers see after that commit, and is
never served again. Writes by another process (``meshmpc node purge`` on the
same database) are not seen by these events: :data:`MAX_AGE_S` bounds how
long such a change can go unseen.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa

MAX_AGE_S = 2.0
"""A cached page older than this is rendered again (bounds staleness from other processes)."""

MAX_PAGES = 512

_WRITE = re.compile(
    r"^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM|REPLACE\s+INTO)"
    r"\s+[\"`]?(\w+)", re.IGNORECASE)
_DIRTY = "meshmpc_dirty_tables"


def written_table(statement: str) -> str | None:
    """The table a SQL write statement changes (None for reads and DDL)."""
    match = _WRITE.match(statement)
    return match.group(1).lower() if match else None


class TableVersions:
    """A write counter per table, moved after the writing connection's transaction ends."""

    def __init__(self, engine: sa.Engine) -> None:
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        sa.event.listen(engine, "after_cursor_execute", self._seen)
        sa.event.listen(engine.pool, "checkin", self._checkin)

    def _seen(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        table = written_table(statement)
        if table is not None:
            conn.info.setdefault(_DIRTY, set()).add(table)

    def _checkin(self, _dbapi_conn: Any, record: Any) -> None:
        tables = record.info.pop(_DIRTY, None)
        if tables:
            self.bump(*tables)

    def bump(self, *tables: str) -> None:
        with self._lock:
            for table in tables:
                self._versions[table] = self._versions.get(table, 0) + 1

    def of(self, tables: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self._versions.get(t, 0) for t in tables)


class PageCache:
    """JSON-encoded pages keyed by request, valid while their tables' versions hold."""

    def __init__(self, versions: TableVersions) -> None:
        self.versions = versions
        self._pages: dict[tuple[Any, ...], tuple[tuple[int, ...], float, bytes]] = {}
        self.hits = self.misses = 0

    def lookup(self, key: tuple[Any, ...], tables: tuple[str, ...]
               ) -> tuple[bytes | None, tuple[int, ...]]:
        """The cached page (or None) and the versions a fresh render must be stored under."""
        versions = self.versions.of(tables)
        entry = self._pages.get(key)
        if entry is not None and entry[0] == versions and time.monotonic() - entry[1] < MAX_AGE_S:
            self.hits += 1
            return entry[2], versions
        self.misses += 1
        return None, versions

    def store(self, key: tuple[Any, ...], versions: tuple[int, ...], body: Any) -> bytes:
        """Encode ``body`` once and keep it under ``versions``; returns the bytes."""
        data = encode(body)
        if len(self._pages) >= MAX_PAGES:
            self._pages.clear()
        self._pages[key] = (versions, time.monotonic(), data)
        return data

    def get_or_render(self, key: tuple[Any, ...], tables: tuple[str, ...],
                      render: Callable[[], Any]) -> bytes:
        data, versions = self.lookup(key, tables)
        return data if data is not None else self.store(key, versions, render())


def encode(body: Any) -> bytes:
    """JSON bytes of an API body (orjson: floats, ints, strings, lists, dicts, None)."""
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
