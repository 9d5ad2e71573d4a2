"""Table-level keyword PIR: files in, pyarrow tables out, jobs for the mesh.

A risk list is a table with a key column (e.g. ``credit_code``); every other
column becomes the record, stored as compact JSON of that row (labelled mode),
or nothing at all (membership mode). The client gets back a table with
``key``, ``found`` and the record's columns (null where not found).

Jobs for :func:`meshmpc.net.launch.run_party` (the ``meshmpc pir`` CLI):
:func:`serve_job` builds the database, serves one client and rebuilds in the
background when the file changes; :func:`query_job` writes the hits file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from meshmpc.data.loaders import load_table
from meshmpc.net import Context
from meshmpc.pir.client import Hit, PirClient
from meshmpc.pir.errors import PirInputError
from meshmpc.pir.rebuild import rebuild_database
from meshmpc.pir.server import PirServer
from meshmpc.pir.table import MAX_RECORD_BYTES, PirDatabase, build_database, key_bytes
from meshmpc.progress import Progress


def _records(table: pa.Table, key: str) -> tuple[list[bytes], list[bytes]]:
    if key not in table.column_names:
        raise PirInputError(f"key column {key!r} not found; columns are {table.column_names}")
    keys = [key_bytes(v) if v is not None else None for v in table.column(key).to_pylist()]
    missing = [row for row, k in enumerate(keys) if k is None]
    if missing:
        raise PirInputError(f"key column {key!r} is empty in rows {missing[:10]}")
    rest = table.drop_columns([key])
    records = [
        json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        for row in rest.to_pylist()
    ] if rest.num_columns else [b""] * table.num_rows
    return [k for k in keys if k is not None], records


def database_from_table(
    table: pa.Table, key: str, record_bytes: int | None = None, membership: bool = False,
    previous: PirDatabase | None = None, tick: Callable[[int], None] | None = None,
) -> PirDatabase:
    """Build a PIR database from a table; ``record_bytes`` defaults to the longest record.

    ``previous``: the version being replaced (its OPRF outputs are reused).
    ``tick``: told the size of each OPRF batch of a fresh build (progress display).
    """
    keys, records = _records(table, key)
    if membership:
        return _build(keys, None, 0, key, previous, tick)
    longest = max((len(r) for r in records), default=0)
    declared = longest if record_bytes is None else record_bytes
    if declared > MAX_RECORD_BYTES:
        raise PirInputError(f"records up to {declared} bytes exceed {MAX_RECORD_BYTES}")
    return _build(keys, records, max(declared, 1), key, previous, tick)


def _build(keys: list[bytes], records: list[bytes] | None, record_bytes: int, key: str,
           previous: PirDatabase | None,
           tick: Callable[[int], None] | None = None) -> PirDatabase:
    if previous is None:
        return build_database(keys, records, record_bytes, key_name=key, tick=tick)
    return rebuild_database(previous, keys, records, record_bytes, key_name=key)


def load_database(path: Path, key: str, record_bytes: int | None = None,
                  membership: bool = False, previous: PirDatabase | None = None) -> PirDatabase:
    """Read a CSV/Parquet risk list and build its PIR database."""
    return database_from_table(load_table(path), key, record_bytes, membership, previous)


def hits_table(hits: Sequence[Hit]) -> pa.Table:
    """key, found, and the record's JSON fields as columns (null when absent)."""
    rows: list[dict[str, Any]] = []
    for h in hits:
        row: dict[str, Any] = {"key": h.key.decode(errors="replace"), "found": h.found}
        if h.found and h.record:
            row.update(json.loads(h.record))
        rows.append(row)
    if not rows:
        return pa.table({"key": pa.array([], pa.string()), "found": pa.array([], pa.bool_())})
    names = list(dict.fromkeys(name for row in rows for name in row))
    return pa.table({n: [row.get(n) for row in rows] for n in names})


async def query_table(ctx: Context, server: str, keys: Sequence[object],
                      progress: Progress | None = None) -> pa.Table:
    """Python API: look ``keys`` up at ``server``; the hits as a pyarrow table.

    ``progress`` shows the hint download and the lookups with rate and ETA.
    """
    client = PirClient(ctx, server, progress)
    try:
        return hits_table(await client.query(keys))
    finally:
        await client.close()


def read_keys(path: Path, column: str | None) -> list[bytes]:
    """The keys to ask about: ``column`` of a CSV/Parquet file (or its only column)."""
    table = load_table(path)
    name = column or (table.column_names[0] if table.num_columns == 1 else None)
    if name is None or name not in table.column_names:
        raise PirInputError(
            f"{path}: name the key column with --key-column (columns: {table.column_names})"
        )
    return [key_bytes(v) for v in table.column(name).to_pylist() if v is not None]


def write_table(table: pa.Table, path: Path) -> None:
    """Write atomically as CSV or Parquet (by suffix)."""
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix in (".parquet", ".pq"):
        pq.write_table(table, tmp)
    else:
        pacsv.write_csv(table, tmp)
    tmp.replace(path)


async def serve_job(ctx: Context, db: str, key: str, client: str,
                    record_bytes: int | None = None, membership: bool = False,
                    watch_s: float = 0.0) -> dict[str, Any]:
    """Server party: build, serve ``client`` until it closes, rebuild on file change."""
    path = Path(db)
    database = await asyncio.to_thread(load_database, path, key, record_bytes, membership)
    server = PirServer(database)
    watcher = asyncio.create_task(_watch(server, path, key, record_bytes, membership, watch_s))
    try:
        served = await server.serve(ctx, client)
    finally:
        watcher.cancel()
    return {"requests": served, "version": server.database.params.version}


async def _watch(server: PirServer, path: Path, key: str, record_bytes: int | None,
                 membership: bool, every_s: float) -> None:
    """Rebuild and swap when the file's modification time changes."""
    if every_s <= 0:
        return
    seen = path.stat().st_mtime_ns
    while True:
        await asyncio.sleep(every_s)
        now = path.stat().st_mtime_ns
        if now != seen:
            seen = now
            new = await asyncio.to_thread(load_database, path, key, record_bytes, membership,
                                          server.database)
            server.swap(new)


async def query_job(ctx: Context, server: str, keys: str, output: str,
                    key_column: str | None = None) -> dict[str, Any]:
    """Client party: look up the keys file at ``server`` and write the hits file."""
    asked = read_keys(Path(keys), key_column)
    table = await query_table(ctx, server, asked)
    write_table(table, Path(output))
    found = sum(1 for f in table.column("found").to_pylist() if f)
    return {"keys": len(asked), "found": found}
