"""A partner's side of the decision service: serve its labelled risk list by keyword PIR.

``serve_risk_list`` is a job for :func:`meshmpc.net.launch.run_party` (or
``python -m meshmpc.net.launch --target meshmpc_credit.decision.partner:serve_risk_list``):
it builds the PIR database from the list file (key column plus ``list_type``,
``risk_level``, ``listed_date`` as the record: the reason code travels in
labelled mode), serves the bank's screen sessions (as many as the bank opens,
:data:`~meshmpc_credit.decision.screens.SESSIONS` by default) until it closes
them, and rebuilds in the background when the file changes (``watch_s``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from meshmpc.net import Context
from meshmpc.pir.api import load_database
from meshmpc.pir.server import PirServer
from meshmpc_credit.decision.screens import SESSIONS, session_context

KEY = "credit_code"


async def serve_risk_list(ctx: Context, risk_list: str, bank: str = "bank", key: str = KEY,
                          watch_s: float = 0.0, sessions: int = SESSIONS) -> dict[str, Any]:
    """Serve ``risk_list`` to ``bank``'s ``sessions`` screen sessions until it closes them."""
    path = Path(risk_list)
    server = PirServer(await asyncio.to_thread(load_database, path, key))
    watcher = asyncio.create_task(_watch(server, path, key, watch_s))
    try:
        served = await asyncio.gather(*(server.serve(session_context(ctx, i), bank)
                                        for i in range(sessions)))
    finally:
        watcher.cancel()
    return {"requests": sum(served), "version": server.database.params.version}


async def _watch(server: PirServer, path: Path, key: str, every_s: float) -> None:
    """Rebuild and swap the database when the list file changes (clients refresh hints)."""
    if every_s <= 0:
        return
    seen = path.stat().st_mtime_ns
    while True:
        await asyncio.sleep(every_s)
        if path.stat().st_mtime_ns != seen:
            seen = path.stat().st_mtime_ns
            server.swap(await asyncio.to_thread(load_database, path, key))
