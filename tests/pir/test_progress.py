"""PIR progress: the table build and the lookups tick with rate and ETA; --quiet is silent.

In process with small batches, the build's OPRF and the client's lookups
tick with an ETA. As ``meshmpc pir serve`` / ``query`` processes both sides
say what they are doing with rates (build, sessions, lookups); with
``--quiet`` stderr is empty; the hits are the same either way.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.data.keynorm import KeyRule
from meshmpc.net import run_parties
from meshmpc.net.local import make_local_cluster
from meshmpc.pir import client as pir_client
from meshmpc.pir import prfcache
from meshmpc.pir.api import query_table
from meshmpc.pir.server import PirServer
from meshmpc.pir.service import load_rule_database
from meshmpc.progress import Progress

TICK = r"[\d,]+/[\d,]+ +[\d.]+%, [\d,]+/s, ETA \d+ s"


def _risk_list(path: Path, n: int) -> None:
    pacsv.write_csv(pa.table({"credit_code": [f"0{i:09d}" for i in range(n)],
                              "level": [("high", "low")[i % 2] for i in range(n)]}), path)


def test_build_and_lookups_tick_with_eta_and_answers_are_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prfcache, "PRF_BATCH", 32)
    monkeypatch.setattr(pir_client, "MAX_CHUNK", 2)
    _risk_list(tmp_path / "risk.csv", 200)
    build_out = io.StringIO()
    database = load_rule_database(str(tmp_path / "risk.csv"), "credit_code", KeyRule(), None,
                                  False, progress=Progress("pir serve", True, 0.0, build_out))
    text = build_out.getvalue()
    assert re.search(rf"^pir serve: building the table: OPRF of every key {TICK}", text, re.M)
    assert re.search(r"^pir serve: table built: 200 records, .* in [\d.]+ s", text, re.M), text
    asked = ["0000000007", "0000000008", "9999999999", "0000000199", "0000000000", "x"]
    outs = {"shown": io.StringIO(), "quiet": io.StringIO()}

    async def party(ctx, name: str):  # noqa: ANN001, ANN202
        if ctx.party == "fin":
            return await PirServer(database).serve(ctx, "bank")
        progress = Progress("pir query", name == "shown", 0.0, outs[name])
        return (await query_table(ctx, "fin", asked, progress)).to_pylist()

    hits = {name: run_parties(["fin", "bank"], party, name)["bank"] for name in outs}
    assert hits["shown"] == hits["quiet"]
    assert [h["found"] for h in hits["shown"]] == [True, True, False, True, True, False]
    assert [h["level"] for h in hits["shown"][:2]] == ["low", "high"]
    text = outs["shown"].getvalue()
    assert re.search(rf"^pir query: looking up keys at fin {TICK}", text, re.M), text
    assert re.search(r"^pir query: looking up keys at fin: 6 keys in", text, re.M), text
    assert "downloading the database hint from fin" in text
    assert outs["quiet"].getvalue() == ""


def _pir(tmp: Path, *flags: str) -> dict[str, subprocess.Popen[str]]:
    code = "import sys; from meshmpc.cli import main; sys.exit(main(sys.argv[1:]))"
    cfg = str(tmp / "cluster.toml")

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", code, *args, *flags],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    return {"serve": start("pir", "serve", "--config", cfg, "--party", "fin", "--db",
                           str(tmp / "risk.csv"), "--key", "credit_code", "--sessions", "1"),
            "query": start("pir", "query", "--config", cfg, "--party", "bank", "--server",
                           "fin", "--keys", str(tmp / "ask.csv"), "--output",
                           str(tmp / "hits.csv"), "--connect-timeout", "120")}


def test_serve_and_query_say_what_they_do_and_nothing_with_quiet(tmp_path: Path) -> None:
    runs = {}
    for name, flags in (("shown", ()), ("quiet", ("--quiet",))):
        folder = tmp_path / name
        folder.mkdir()
        make_local_cluster(["fin", "bank"], folder)
        _risk_list(folder / "risk.csv", 300)
        (folder / "ask.csv").write_text("code\n0000000299\n0000000300\n0000000002\n")
        runs[name] = _pir(folder, *flags)  # both runs at once
    errs = {}
    for name, procs in runs.items():
        for role in ("query", "serve"):
            _, err = procs[role].communicate(timeout=240)
            assert procs[role].returncode == 0, err
            errs[name, role] = err
    serve, query = errs["shown", "serve"], errs["shown", "query"]
    assert re.search(r"^pir serve: read 300 rows in [\d.]+ s", serve, re.M), serve
    assert re.search(r"^pir serve: building the table: OPRF of every key: 300 keys in [\d.]+ s, "
                     r"[\d,]+/s", serve, re.M), serve
    assert re.search(r"^pir serve: table built: 300 records", serve, re.M), serve
    assert re.search(r"^pir serve: session with bank ended: 3 requests, 3 keys in [\d.]+ s; "
                     r"[\d.,]+ requests/s", serve, re.M), serve
    assert re.search(r"^pir serve: served 1 sessions, 3 requests, 3 keys", serve, re.M), serve
    for line in ("reading ", "3 distinct keys to ask", "connecting to fin at ",
                 "looking up keys at fin: 3 keys in", "2 of 3 found; wrote "):
        assert f"pir query: {line}" in query, query
    assert errs["quiet", "serve"] == "" and errs["quiet", "query"] == ""
    found = {name: pacsv.read_csv(tmp_path / name / "hits.csv").to_pylist() for name in runs}
    assert found["shown"] == found["quiet"]
    assert [h["found"] for h in found["shown"]] == [True, False, True]
