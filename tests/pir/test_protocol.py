"""Keyword PIR end to end over the in-memory mesh: client and server as two parties."""

import dataclasses
from typing import Any

import numpy as np
import pytest

from meshmpc.net import Context, run_parties
from meshmpc.pir import lwe
from meshmpc.pir.client import PirClient
from meshmpc.pir.errors import PirProtocolError, StaleHintError
from meshmpc.pir.server import DATA, REQ, RESP, PirServer
from meshmpc.pir.table import build_database

KEYS = [b"9131%06d" % i for i in range(400)]
RECORDS = [b"MARK-%d;" % i * (1 + i % 5) for i in range(400)]


@pytest.fixture(scope="module")
def server_db() -> Any:
    return build_database(KEYS, RECORDS, 48, buckets=2)


def run(server: PirServer, client_fn: Any) -> Any:
    async def party(ctx: Context) -> Any:
        if ctx.party == "fin":
            return await server.serve(ctx, "bank")
        client = PirClient(ctx, "fin")
        try:
            return await client_fn(client, ctx)
        finally:
            await client.close()

    return run_parties(["fin", "bank"], party)["bank"]


def test_found_not_found_and_duplicates(server_db: Any) -> None:
    asked = [KEYS[3], b"unknown", KEYS[399], KEYS[3], KEYS[0]]

    async def go(client: PirClient, ctx: Context) -> Any:
        return await client.query(asked)

    hits = run(PirServer(server_db), go)
    assert [h.key for h in hits] == asked
    assert [h.found for h in hits] == [True, False, True, True, True]
    assert hits[0].record == RECORDS[3] and hits[2].record == RECORDS[399]
    assert hits[1].record is None and hits[3] == hits[0]


def test_batch_spanning_buckets_returns_every_record(server_db: Any) -> None:
    asked = KEYS[::3] + [b"absent-%d" % i for i in range(20)]

    async def go(client: PirClient, ctx: Context) -> Any:
        return await client.query(asked)

    hits = run(PirServer(server_db), go)
    for h in hits:
        assert h.found == (h.key in KEYS)
        if h.found:
            assert h.record == RECORDS[KEYS.index(h.key)]


def test_empty_database_and_membership_mode() -> None:
    empty = PirServer(build_database([], [], 16))
    member = PirServer(build_database(KEYS[:50], None, 0))

    async def go(client: PirClient, ctx: Context) -> Any:
        return await client.query([KEYS[1], b"nobody"])

    assert [h.found for h in run(empty, go)] == [False, False]
    hits = run(member, go)
    assert [h.found for h in hits] == [True, False] and hits[0].record is None


def test_maximum_length_records() -> None:
    records = [bytes([i]) * 64 for i in range(30)]
    server = PirServer(build_database(KEYS[:30], records, 64))

    async def go(client: PirClient, ctx: Context) -> Any:
        return await client.query(KEYS[:30])

    assert [h.record for h in run(server, go)] == records


def test_server_sees_the_same_sizes_whatever_the_keys(server_db: Any) -> None:
    """Found or not, which keys: every message the server receives has one size."""

    def traffic(asked: list[bytes]) -> tuple[int, int]:
        async def party(ctx: Context) -> Any:
            if ctx.party == "fin":
                await PirServer(server_db).serve(ctx, "bank")
                t = ctx.traffic()
                return t.bytes_received, t.messages_received
            client = PirClient(ctx, "fin")
            await client.query(asked)
            await client.close()

        return run_parties(["fin", "bank"], party)["fin"]

    sizes = {traffic(a) for a in ([KEYS[1], KEYS[2]], [b"nope", b"nada"], [KEYS[7], b"x"])}
    assert len(sizes) == 1


def test_client_cannot_read_records_it_did_not_ask_for(server_db: Any) -> None:
    """The answers carry whole columns of other records: all of them stay sealed."""
    seen: list[np.ndarray] = []

    async def go(client: PirClient, ctx: Context) -> Any:
        original = lwe.decode

        def spy(*args: Any) -> Any:
            seen.append(original(*args))
            return seen[-1]

        lwe.decode = spy
        try:
            return await client.query([KEYS[5]])
        finally:
            lwe.decode = original

    hits = run(PirServer(server_db), go)
    assert hits[0].record == RECORDS[5]
    decoded = b"".join(d.tobytes() for d in seen)
    p = server_db.params
    assert len(decoded) >= 2 * p.rows_per_bucket  # both columns, with other slots
    assert b"MARK-" not in decoded  # no plaintext of any record, not even the asked one


def test_stale_hint_is_detected_and_refreshed(server_db: Any) -> None:
    server = PirServer(server_db)
    newer = build_database([b"fresh"], [b"new record"], 16)

    async def go(client: PirClient, ctx: Context) -> Any:
        await client.refresh()
        server.swap(newer)
        with pytest.raises(StaleHintError, match="party 'fin' now serves database version"):
            await client.query([b"fresh"], auto_refresh=False)
        return await client.query([b"fresh"])

    hits = run(server, go)
    assert hits[0].found and hits[0].record == b"new record"


def test_malformed_query_gets_a_clear_error(server_db: Any) -> None:
    async def party(ctx: Context) -> Any:
        if ctx.party == "fin":
            return await PirServer(server_db).serve(ctx, "bank")
        version = server_db.params.version
        await ctx.send("fin", REQ, {"op": "query", "version": version, "per_bucket": 1})
        await ctx.send("fin", DATA, np.zeros((3, 5), np.uint32))
        reply = await ctx.recv("fin", RESP)
        await ctx.send("fin", REQ, {"op": "launch"})
        unknown = await ctx.recv("fin", RESP)
        await ctx.send("fin", REQ, {"op": "oprf", "version": version})
        await ctx.send("fin", DATA, np.zeros((2, 32), np.uint8))  # low order: refused
        bad_point = await ctx.recv("fin", RESP)
        await ctx.send("fin", REQ, {"op": "close"})
        return reply, unknown, bad_point

    reply, unknown, bad_point = run_parties(["fin", "bank"], party)["bank"]
    assert reply["error"] == "malformed" and "uint32 array of shape" in reply["detail"]
    assert "unknown request 'launch'" in unknown["detail"]
    assert "blinded element 0 is not a point of the prime-order subgroup" in bad_point["detail"]


def test_client_raises_on_server_rejection(server_db: Any) -> None:
    async def go(client: PirClient, ctx: Context) -> Any:
        await client.refresh()
        assert client.params is not None
        # corrupt: a client that believes in more buckets sends a query of the wrong shape
        client.params = dataclasses.replace(client.params, buckets=client.params.buckets + 1)
        with pytest.raises(PirProtocolError, match="rejected the request"):
            await client.query([KEYS[0]], auto_refresh=False)

    run(PirServer(server_db), go)


def test_rebuild_in_the_background_then_clients_refresh(server_db: Any) -> None:
    server = PirServer(server_db)

    async def go(client: PirClient, ctx: Context) -> Any:
        before = await client.query([KEYS[2], b"late"])
        await server.rebuild([b"late", KEYS[2]], [b"added", b"changed"], 16)
        after = await client.query([KEYS[2], b"late"])  # stale hint: refreshed on the fly
        return before, after

    before, after = run(server, go)
    assert [h.record for h in before] == [RECORDS[2], None]
    assert [h.record for h in after] == [b"changed", b"added"]


def test_answers_identical_before_and_after_a_rebuild(server_db: Any) -> None:
    server = PirServer(server_db)
    asked = KEYS[:40:3] + [b"absent-1", b"absent-2"]

    async def go(client: PirClient, ctx: Context) -> Any:
        before = await client.query(asked)
        await server.rebuild(KEYS, RECORDS, 48)  # same data, new version: OPRF reused
        after = await client.query(asked)
        return before, after

    before, after = run(server, go)
    assert [(h.found, h.record) for h in before] == [(h.found, h.record) for h in after]
    assert server.database.oprf_key == server_db.oprf_key


def test_incremental_rebuild_serves_exactly_the_new_list() -> None:
    from meshmpc.pir.rebuild import rebuild_database

    keys = [b"9131%06d" % i for i in range(600)]
    recs = [b"R%d" % i for i in range(600)]
    first = build_database(keys, recs, 24, buckets=2)
    new_keys = keys[10:] + [b"new-%d" % i for i in range(8)]  # 10 removed, 8 added
    new_recs = recs[10:] + [b"N%d" % i for i in range(8)]
    new_recs[5] = b"changed-5"  # key keys[15]
    second = rebuild_database(first, new_keys, new_recs, 24)
    assert second.params.salt == first.params.salt and second.params.version != \
        first.params.version
    a_t = np.ascontiguousarray(lwe.expand_matrix(second.params.seed, second.params.columns,
                                                 lwe.LWE_N).T)
    assert np.array_equal(second.hint, lwe.hint(second.db, a_t))  # patched hint is exact
    assert not np.array_equal(second.db, first.db)
    asked = keys[:12] + [keys[15], keys[300]] + [b"new-0", b"new-7", b"never"]

    async def go(client: PirClient, ctx: Context) -> Any:
        return await client.query(asked)

    hits = run(PirServer(second), go)
    want = dict(zip(new_keys, new_recs, strict=True))
    assert [h.record for h in hits] == [want.get(k) for k in asked]
    assert np.count_nonzero(second.db != first.db) < 0.2 * second.db.size  # a patch
    third = rebuild_database(second, keys[:100], recs[:100], 24)  # most records gone
    assert third.params.salt != second.params.salt  # too many changes: a fresh layout


@pytest.mark.slow
def test_bench_pir_small(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from meshmpc_bench import pir as bench

    assert bench.main(["--rows", "5000", "--record-bytes", "32", "--setup-repeats", "1",
                       "--repeats", "2", "--batch", "20", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["bench"] for x in lines] == ["pir.setup", "pir.rebuild", "pir.query", "pir.batch"]
