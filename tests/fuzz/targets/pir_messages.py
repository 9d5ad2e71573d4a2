"""PIR query and answer parsers: the server fed scripted client requests, and the client
fed scripted server replies (hint, parameters, OPRF answers, query answers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from meshmpc.crypto.oprf import OprfError
from meshmpc.net.context import Context
from meshmpc.net.errors import MalformedMessageError
from meshmpc.pir.client import query_keys
from meshmpc.pir.errors import PirError
from meshmpc.pir.server import PirServer
from meshmpc.pir.table import build_database
from targets._peerfix import play, script

KEYS = [f"91330100MA{i:08d}".encode() for i in range(40)]
RECORDS = [f"score={i}".encode().ljust(16, b".") for i in range(40)]
DATABASE = build_database(KEYS, RECORDS, 16, "credit_code")
QUERIES = [KEYS[3], KEYS[17], b"not-in-the-table"]
DOCUMENTED = (PirError, OprfError, MalformedMessageError)
PARTIES = ["srv", "cli"]


def server(ctx: Context) -> Awaitable[int]:
    return PirServer(DATABASE).serve(ctx, "cli")


def client(ctx: Context) -> Awaitable[Any]:
    return query_keys(ctx, "srv", QUERIES)


ROLES: dict[str, Callable[[Context], Awaitable[Any]]] = {"srv": server, "cli": client}


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    if not data:
        return
    items = script(data[1:])
    if items is None:
        return
    party = PARTIES[data[0] % 2]
    hits = play(party, PARTIES, items, ROLES[party], DOCUMENTED)
    if party == "cli" and hits is not None:
        assert len(hits) == len(QUERIES), "an answer for every query"
        for hit, key in zip(hits, QUERIES, strict=True):
            if hit.found:  # a forged answer may not open: found means the record is real
                assert hit.record == RECORDS[KEYS.index(key)], "a wrong record was accepted"
