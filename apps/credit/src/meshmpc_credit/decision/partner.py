"""A partner's side of the decision service: serve its PIR table to the bank's screen sessions.

Two jobs for :func:`meshmpc.net.launch.run_party` (or ``python -m
meshmpc.net.launch --target meshmpc_credit.decision.partner:<job>``):

* :func:`serve_joint` (the decision service's default): one labelled table
  whose record carries the risk-list entry *and* the masked partial score
  (:mod:`.joint_table`), so the bank's screen and joint score cost one query;
  the partners first draw the pairwise mask seeds among themselves;
* :func:`serve_risk_list`: the risk list alone (``list_type``, ``risk_level``,
  ``listed_date`` as the record), for a bank scoring on its own card.

Both serve the bank's screen sessions (as many as it opens,
:data:`~meshmpc_credit.decision.screens.SESSIONS` by default) through every
session generation until it stops them, and rebuild in the background when
the risk-list file changes (``watch_s``): the joint table keeps its masked
words (same epoch), only the list columns change.

Under the partner's grants: ``admit`` (a :data:`~meshmpc.pir.server.LookupGate`),
or ``node`` + ``node_token_file`` + ``dataset`` (its node's API, as ``pir serve
--node``), is asked before each batch of the bank's lookups, with component
``online.score`` for the joint table (the score is what is looked up) and
``pir.query`` for the risk list alone; a refused batch is answered ``refused``
and the bank's decision becomes ``refer`` with the node's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshmpc.data.loaders import load_table
from meshmpc.net import Context
from meshmpc.pir.admit_http import HttpLookupGate, read_token_file
from meshmpc.pir.api import database_from_table, load_database
from meshmpc.pir.server import LookupGate, PirServer
from meshmpc.pir.table import PirDatabase
from meshmpc_credit.decision.joint_score import load_card
from meshmpc_credit.decision.joint_table import (
    ScoredKeys,
    joint_table,
    mask_partials,
    partial_scores,
    read_universe,
)
from meshmpc_credit.decision.screens import SESSIONS, serve_sessions

KEY = "credit_code"
PARTNERS = "gov,fin,telco"


def node_gate(component: str, admit: LookupGate | None = None, node: str | None = None,
              node_token_file: str | None = None, dataset: str | None = None
              ) -> LookupGate | None:
    """``admit`` itself, or the gate of the partner's node (all three node arguments)."""
    if admit is not None or not (node or node_token_file or dataset):
        return admit
    if not (node and node_token_file and dataset):
        raise ValueError("node, node_token_file and dataset go together (the partner's node "
                         "API, an analyst's token file and the dataset its grants name)")
    gate = HttpLookupGate(node, read_token_file(Path(node_token_file)), dataset, component)
    gate.check()
    return gate


async def serve_risk_list(ctx: Context, risk_list: str, bank: str = "bank", key: str = KEY,
                          watch_s: float = 0.0, sessions: int = SESSIONS,
                          admit: LookupGate | None = None, node: str | None = None,
                          node_token_file: str | None = None, dataset: str | None = None
                          ) -> dict[str, Any]:
    """Serve ``risk_list`` to ``bank``'s ``sessions`` screen sessions until it stops them."""
    path = Path(risk_list)
    gate = await asyncio.to_thread(node_gate, "pir.query", admit, node, node_token_file,
                                   dataset)

    def build() -> PirDatabase:
        return load_database(path, key)

    return await _serve(ctx, await asyncio.to_thread(build), build, path, bank, sessions,
                        watch_s, gate)


async def serve_joint(ctx: Context, risk_list: str, data: str, card: str,
                      universe: str | None = None, partners: str = PARTNERS,
                      bank: str = "bank", key: str = KEY, watch_s: float = 0.0,
                      sessions: int = SESSIONS, admit: LookupGate | None = None,
                      node: str | None = None, node_token_file: str | None = None,
                      dataset: str | None = None) -> dict[str, Any]:
    """Publish the joint table (list flags + masked partial score) and serve it.

    ``data``: this partner's features (the columns its ``card`` scores), ``card``:
    its points table from the joint job (``<job>/<party>/card/scorecard.json``),
    ``universe``: the shared registry of credit codes (optional), ``partners``:
    every partner publishing a joint table, in the same order at each of them;
    ``admit`` / ``node``...: the grants each batch passes (``online.score``).
    """
    gate = await asyncio.to_thread(node_gate, "online.score", admit, node, node_token_file,
                                   dataset)
    scorecard = load_card(Path(card))
    features, reg = await asyncio.to_thread(lambda: (load_table(Path(data)),
                                                     read_universe(universe, key)))
    keys, held, partial = await asyncio.to_thread(partial_scores, ctx.party, features,
                                                  scorecard, key, reg)
    scored = await mask_partials(ctx, partners.split(","), keys, held, partial)
    path = Path(risk_list)

    def build() -> PirDatabase:
        return joint_database(scored, load_table(path), key)

    result = await _serve(ctx, await asyncio.to_thread(build), build, path, bank, sessions,
                          watch_s, gate)
    return {**result, "published": len(keys), "held": int(held.sum()), "epoch": scored.epoch}


def joint_database(scored: ScoredKeys, risk_list: pa.Table | None,
                   key: str = KEY) -> PirDatabase:
    """The PIR database of the joint table (labelled mode)."""
    return database_from_table(joint_table(scored, risk_list, key), key)


async def _serve(ctx: Context, database: PirDatabase, build: Callable[[], PirDatabase],
                 path: Path, bank: str, sessions: int, watch_s: float,
                 admit: LookupGate | None = None) -> dict[str, Any]:
    server = PirServer(database, admit=admit)
    watcher = asyncio.create_task(_watch(server, path, build, watch_s))
    try:
        served = await serve_sessions(ctx, server, bank, sessions)
    finally:
        watcher.cancel()
    return {"requests": served, "version": server.database.params.version,
            "records": server.database.params.n_records}


async def _watch(server: PirServer, path: Path, build: Callable[[], PirDatabase],
                 every_s: float) -> None:
    """Rebuild and swap the database when the list file changes (clients refresh hints)."""
    if every_s <= 0:
        return
    seen = path.stat().st_mtime_ns
    while True:
        await asyncio.sleep(every_s)
        if path.stat().st_mtime_ns != seen:
            seen = path.stat().st_mtime_ns
            server.swap(await asyncio.to_thread(build))
