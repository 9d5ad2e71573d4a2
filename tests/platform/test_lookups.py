"""Lookups under grant caps: a PIR sweep stops at the cap; the admit API; the remote gate."""

import asyncio
import contextlib
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshmpc.net import Context, run_parties
from meshmpc.pir.admit_http import NodeGateError, read_token_file
from meshmpc.pir.client import PirClient
from meshmpc.pir.errors import LookupRefused
from meshmpc.pir.server import PirServer
from meshmpc.pir.table import build_database
from meshmpc.platform.api import create_app
from meshmpc.platform.consent import DEFAULT_PURPOSES
from meshmpc.platform.lookups import NodeLookupGate, RemoteLookupGate, consent_fields
from meshmpc.platform.models import ConsentBatch, Grant

RISK_KEYS = [b"9131%014d" % i for i in range(3000)]


def _risk_dataset(node, tmp_path, **caps):
    path = tmp_path / "risk.parquet"
    pq.write_table(pa.table({"credit_code": [k.decode() for k in RISK_KEYS[:10]]}), path)
    from meshmpc.platform.models import Dataset

    with node.db.session() as s:
        s.add(Dataset(name="risklist", uri=str(path), columns=[]))
    return node.grants.create("risklist", "bank", "sec", components=["pir.query"],
                              purposes=["credit_approval"], **caps)


def _fields(n, start=0):
    refs = [f"consent-{start + i}" for i in range(n)]
    return consent_fields("credit_approval", refs, DEFAULT_PURPOSES)


@pytest.mark.parametrize("db_url", [""])  # SQLite only: the admit API runs on both databases
def test_pir_sweep_stops_at_the_cap(gov_node, tmp_path):
    """A bank sweeping 10^5 credit codes in batches of 1,000 gets 1,000 answered, then
    a refusal naming the grant and its cap; the server keeps serving."""
    node = gov_node.node
    grant_id = _risk_dataset(node, tmp_path, max_lookups_per_day=1000)
    server = PirServer(build_database(RISK_KEYS, [b"risk-%d" % i for i in range(3000)], 16,
                                      buckets=2),
                       admit=NodeLookupGate(node, "risklist"))
    sweep = [b"9131%014d" % i for i in range(100_000)]

    async def party(ctx: Context):
        if ctx.party == "gov":
            return await server.serve(ctx, "bank")
        client = PirClient(ctx, "gov")
        answered, refusal = 0, None
        try:
            for lo in range(0, len(sweep), 1000):
                client.request_fields = _fields(1000, lo)
                try:
                    hits = await client.query(sweep[lo:lo + 1000])
                except LookupRefused as exc:
                    refusal = str(exc)
                    break
                answered += len(hits)
                assert all(h.found == (h.key in RISK_KEYS) for h in hits)
        finally:
            await client.close()
        return answered, refusal

    answered, refusal = run_parties(["gov", "bank"], party)["bank"]
    assert answered == 1000
    assert refusal and "capped" in refusal and f"grant {grant_id}" in refusal
    assert "1000 of 1000 today" in refusal and "1000 refused" in refusal
    with node.db.session() as s:
        assert s.get(Grant, grant_id).lookups_total == 1000
        assert s.query(ConsentBatch).filter_by(kind="lookup").count() == 1
    assert [e["kind"] for e in node.audit.search(actor="bank")][:2] == [
        "lookup.refused", "lookup.admit"]


def _admit(client, count, **overrides):
    body = {"requester": "bank", "dataset": "risklist", "count": count,
            "purpose": "credit_approval", **_fields(count), **overrides}
    return client.post("/api/v1/lookups/admit", json=body)


def test_admit_api_checks_consent_purpose_caps_and_role(gov_node, tmp_path):
    _risk_dataset(gov_node.node, tmp_path, max_lookups_total=1000)
    ana = gov_node.as_user("ana")
    r = _admit(ana, 600)
    assert r.status_code == 200 and r.json() == {"admitted": 600}
    r = _admit(ana, 600)  # a whole batch or nothing
    assert r.status_code == 403 and "600 of 1000 in total" in r.json()["error"]["message"]
    assert _admit(ana, 400).json() == {"admitted": 400}
    r = _admit(ana, 10, consent=_fields(5)["consent"])
    assert r.status_code == 403 and "one reference per key" in r.json()["error"]["message"]
    r = _admit(ana, 10, purpose="marketing")
    assert r.status_code == 403 and "marketing" in r.json()["error"]["message"]
    r = _admit(ana, 10, consent={"count": 10})  # refused and audited, not a schema error
    assert r.status_code == 403 and "carry no consent" in r.json()["error"]["message"]
    r = _admit(ana, 10, purpose=None, consent=None)
    assert r.status_code == 403 and "carry no purpose" in r.json()["error"]["message"]
    assert _admit(gov_node.as_user("appr"), 1).status_code == 403


@contextlib.contextmanager
def serving(app):
    """The node's app behind a real HTTP server on loopback (the gate speaks urllib)."""
    import threading

    import uvicorn

    from meshmpc.net.local import free_ports

    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_config=None))  # leaves logging alone
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_remote_gate_admits_and_refuses_through_the_api(gov_node, tmp_path):
    _risk_dataset(gov_node.node, tmp_path, max_lookups_total=5)
    with serving(create_app(gov_node.node, heartbeats=False)) as url:  # stops at once
        gate = RemoteLookupGate(url, gov_node.token("ana"), "risklist")
        assert "analyst" in gate.check()

        async def go():
            await gate("bank", 5, _fields(5))
            with pytest.raises(LookupRefused, match="capped"):
                await gate("bank", 1, _fields(1))
            with pytest.raises(LookupRefused, match="no grant"):
                await gate("fin", 1, _fields(1))
            with pytest.raises(LookupRefused, match="no purpose; give one of: credit_approval"):
                await gate("bank", 1, {})
        asyncio.run(go())
        with pytest.raises(NodeGateError, match="needs the 'analyst' role"):
            RemoteLookupGate(url, gov_node.token("appr"), "risklist").check()
        with pytest.raises(NodeGateError, match="refused the token"):
            RemoteLookupGate(url, "not-a-token", "risklist").check()
    refused = gov_node.node.audit.search(kind="lookup.refused")
    assert len(refused) == 3 and {e["detail"]["purpose"] for e in refused} == {
        "credit_approval", None}


def test_remote_gate_fails_closed_when_the_node_is_down():
    gate = RemoteLookupGate("http://127.0.0.1:9", "token", "risklist", timeout_s=2)

    async def go():
        with pytest.raises(LookupRefused, match="did not answer"):
            await gate("bank", 1, _fields(1))
    asyncio.run(go())
    with pytest.raises(NodeGateError, match="did not answer"):
        gate.check()
    with pytest.raises(NodeGateError, match="give the node's API address"):
        RemoteLookupGate("127.0.0.1:8600", "token", "risklist")


def test_token_file_must_be_private_and_non_empty(tmp_path):
    path = tmp_path / "fin.token"
    with pytest.raises(NodeGateError, match="token file"):
        read_token_file(path)
    path.write_text("secret-token\n")
    path.chmod(0o644)
    with pytest.raises(NodeGateError, match="chmod 600"):
        read_token_file(path)
    path.chmod(0o600)
    assert read_token_file(path) == "secret-token"
    path.write_text("\n")
    with pytest.raises(NodeGateError, match="holds no token"):
        read_token_file(path)
