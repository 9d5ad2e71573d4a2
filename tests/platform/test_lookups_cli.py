"""A real node, ``pir serve --node`` and ``pir query --purpose``: lookups under the grant's caps."""

import asyncio
import os
import signal
import subprocess
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.net import Context, run_parties
from meshmpc.net.local import make_local_cluster
from meshmpc.pir.admit_http import HttpLookupGate
from meshmpc.pir.client import PirClient
from meshmpc.pir.errors import LookupRefused
from meshmpc.pir.server import PirServer
from meshmpc.pir.table import build_database
from meshmpc.platform.models import Dataset
from meshmpc.platform.node import Node

from .live import RunningNode

LISTED = [f"9131{i:014d}" for i in range(0, 4000, 2)]  # even codes are on the list


def meshmpc(*args):
    code = "import sys; from meshmpc.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture(scope="module")
def fin_node(tmp_path_factory):
    """fin's node with the risk list registered and granted to the bank: 1,000 lookups
    (one node for the module: the tests count their own audit entries)."""
    tmp_path = tmp_path_factory.mktemp("fin-node")
    running = RunningNode(tmp_path, "fin")
    node = Node.open(running.dir)
    risk = tmp_path / "risk.csv"
    pacsv.write_csv(pa.table({"credit_code": LISTED, "risk_level": ["high"] * len(LISTED)}),
                    risk)
    with node.db.session() as s:
        s.add(Dataset(name="risklist", uri=str(risk), columns=[]))
    running.grant = node.grants.create("risklist", "bank", "sec", components=["pir.query"],
                                       purposes=["credit_approval"], max_lookups_total=1000)
    running.node, running.risk = node, risk
    token = tmp_path / "fin.token"
    token.write_text(running.client("ana").headers["Authorization"].split()[1])
    token.chmod(0o600)
    running.token_file = token
    yield running
    running.stop()


def _keys(tmp_path, name, count):
    keys = [f"9131{i:014d}" for i in range(count)]
    pacsv.write_csv(pa.table({"credit_code": keys}), tmp_path / f"{name}.csv")
    (tmp_path / f"{name}.refs").write_text("".join(f"consent-{name}-{i}\n"
                                                   for i in range(count)))
    return tmp_path / f"{name}.csv", tmp_path / f"{name}.refs"


def _query(cfg, keys, out, *extra):
    """``pir query`` in this process (the server is a process of its own): exit code."""
    from meshmpc.cli import main

    return main(["pir", "query", "--config", cfg, "--party", "bank", "--server", "fin",
                 "--keys", str(keys), "--output", str(out), "--connect-timeout", "60",
                 "--quiet", *extra])


def test_pir_serve_through_the_node_caps_a_sweep(fin_node, tmp_path, capsys):
    make_local_cluster(["fin", "bank"], tmp_path)
    cfg = str(tmp_path / "cluster.toml")
    server = meshmpc("pir", "serve", "--config", cfg, "--party", "fin", "--db",
                     str(fin_node.risk), "--key", "credit_code", "--quiet",
                     "--node", fin_node.url, "--node-token-file", str(fin_node.token_file),
                     "--dataset", "risklist")
    try:
        keys, refs = _keys(tmp_path, "within", 500)
        assert _query(cfg, keys, tmp_path / "hits.csv", "--purpose", "credit_approval",
                      "--consent-refs", str(refs)) == 0, capsys.readouterr().err
        hits = pacsv.read_csv(tmp_path / "hits.csv", convert_options=pacsv.ConvertOptions(
            column_types={"key": pa.string()})).to_pylist()
        assert len(hits) == 500 and all(h["found"] == (h["key"] in LISTED) for h in hits)

        capsys.readouterr()
        assert _query(cfg, keys, tmp_path / "bare.csv") == 2  # no purpose: stops first
        error = capsys.readouterr().err
        assert "give --purpose and --consent-refs (nothing was asked)" in error

        keys, refs = _keys(tmp_path, "sweep", 10_000)
        assert _query(cfg, keys, tmp_path / "sweep-hits.csv", "--purpose", "credit_approval",
                      "--consent-refs", str(refs), "--batch", "500") == 2
        error = capsys.readouterr().err
        assert f"grant {fin_node.grant}" in error and "1000 of 1000 in total" in error
        assert "500 of 10,000 keys had been answered" in error, error
        assert not (tmp_path / "sweep-hits.csv").exists()
        assert server.poll() is None  # still serving after the refusal
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    details = [e["detail"] for e in fin_node.node.audit.search(kind="lookup.admit")]
    assert [d["count"] for d in details] == [500, 500]
    refused = [e["detail"] for e in fin_node.node.audit.search(kind="lookup.refused")]
    assert [d["count"] for d in refused if d["count"] > 1] == [500]


def test_a_batch_without_purpose_is_refused_before_the_oprf(fin_node):
    """A client that skips the CLI's check still gets nothing: the server's gate refuses
    the batch (audited at the node) and the OPRF key never touches its points."""
    database = build_database([k.encode() for k in LISTED[:50]], None, 0, buckets=1)
    evaluated = []
    real = database.oprf_key.evaluate_blinded
    object.__setattr__(database.oprf_key, "evaluate_blinded",  # a frozen dataclass
                       lambda points: evaluated.append(1) or real(points))
    gate = HttpLookupGate(fin_node.url, fin_node.token_file.read_text(), "risklist")
    server = PirServer(database, admit=gate)

    async def party(ctx: Context):
        if ctx.party == "fin":
            return await server.serve(ctx, "bank")
        client = PirClient(ctx, "fin")
        try:
            with pytest.raises(LookupRefused, match="no purpose; give one of: credit_approval"):
                await client.query([LISTED[0].encode()])
            client.request_fields = {"purpose": "credit_approval"}
            with pytest.raises(LookupRefused, match="carry no consent"):
                await client.query([LISTED[0].encode()])
        finally:
            await client.close()
        return True

    before = len(fin_node.node.audit.search(kind="lookup.refused"))
    assert run_parties(["fin", "bank"], party)["bank"] is True
    assert evaluated == []
    refused = fin_node.node.audit.search(kind="lookup.refused")
    assert len(refused) == before + 2
    assert {e["detail"]["purpose"] for e in refused[:2]} == {None, "credit_approval"}
    asyncio.run(gate.aclose())


def test_query_checks_purpose_and_consent_before_connecting(tmp_path, capsys):
    from meshmpc.cli import main

    make_local_cluster(["fin", "bank"], tmp_path)
    cfg = str(tmp_path / "cluster.toml")
    keys, refs = _keys(tmp_path, "few", 20)
    (tmp_path / "short.refs").write_text("consent-1\nconsent-2\n")
    cases = [(["--purpose", "marketing", "--consent-refs", str(refs)], "'marketing'"),
             (["--purpose", "credit_approval"], "go together"),
             (["--purpose", "credit_approval", "--consent-refs", str(tmp_path / "short.refs")],
              "2 consent references for 20 distinct keys")]
    for extra, message in cases:  # the server is not running: nothing may be dialled
        assert main(["pir", "query", "--config", cfg, "--party", "bank", "--server", "fin",
                     "--keys", str(keys), "--output", str(tmp_path / "out.csv"),
                     "--connect-timeout", "30", "--quiet", *extra]) == 2
        assert message in capsys.readouterr().err
