"""``meshmpc pir serve`` / ``query`` as two processes over the real encrypted mesh."""

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from meshmpc.net.local import make_local_cluster
from meshmpc.pir.api import database_from_table, hits_table
from meshmpc.pir.client import Hit


def meshmpc(*args: str) -> subprocess.Popen[str]:
    code = "import sys; from meshmpc.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_serve_and_query_write_the_hits(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["fin", "bank"], tmp_path)
    cfg = str(tmp_path / "cluster.toml")
    risk = pa.table({"credit_code": ["91310000A", "91310000B", "91310000C"],
                     "risk_level": ["high", "low", "medium"], "overdue_days": [90, 0, 30]})
    pq.write_table(risk, tmp_path / "risklist.parquet")
    pacsv.write_csv(pa.table({"applicant": ["91310000B", "91319999Z", "91310000A"]}),
                    tmp_path / "applicants.csv")
    server = meshmpc("pir", "serve", "--config", cfg, "--party", "fin",
                     "--db", str(tmp_path / "risklist.parquet"), "--key", "credit_code",
                     "--sessions", "1")
    client = meshmpc("pir", "query", "--config", cfg, "--party", "bank", "--server", "fin",
                     "--keys", str(tmp_path / "applicants.csv"),
                     "--output", str(tmp_path / "hits.csv"))
    assert client.wait(120) == 0, client.stderr.read() if client.stderr else ""
    assert server.wait(60) == 0, server.stderr.read() if server.stderr else ""
    hits = pacsv.read_csv(tmp_path / "hits.csv").to_pylist()
    assert [h["found"] for h in hits] == [True, False, True]
    assert hits[0]["risk_level"] == "low" and hits[2]["overdue_days"] == 90
    assert hits[1]["risk_level"] in (None, "") and hits[1]["overdue_days"] is None


def test_query_reports_a_missing_key_column(tmp_path: Path) -> None:
    make_local_cluster(["fin", "bank"], tmp_path)
    pacsv.write_csv(pa.table({"a": ["1"], "b": ["2"]}), tmp_path / "keys.csv")
    client = meshmpc("pir", "query", "--config", str(tmp_path / "cluster.toml"), "--party",
                     "bank", "--server", "fin", "--keys", str(tmp_path / "keys.csv"),
                     "--output", str(tmp_path / "out.csv"))
    assert client.wait(60) != 0
    assert client.stderr is not None and "--key-column" in client.stderr.read()


def test_table_api_roundtrip() -> None:
    table = pa.table({"id": [1, 2], "score": [0.5, 0.25]})
    db = database_from_table(table, "id")
    assert db.params.n_records == 2 and db.params.record_bytes == len(b'{"score":0.25}')
    out = hits_table([Hit(b"2", True, b'{"score":0.25}'), Hit(b"7", False, None)])
    assert out.to_pylist() == [{"key": "2", "found": True, "score": 0.25},
                               {"key": "7", "found": False, "score": None}]


def _query(cfg: str, party: str, keys: Path, out: Path) -> subprocess.Popen[str]:
    return meshmpc("pir", "query", "--config", cfg, "--party", party, "--server", "fin",
                   "--keys", str(keys), "--output", str(out), "--connect-timeout", "60")


def _found(path: Path) -> dict[str, bool]:
    return {r["key"]: r["found"] for r in pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(column_types={"key": pa.string()}))
        .to_pylist()}


def test_server_keeps_serving_clients_and_reloads_until_stopped(tmp_path: Path) -> None:
    import signal
    import time

    make_local_cluster(["fin", "bank", "telco"], tmp_path)
    cfg = str(tmp_path / "cluster.toml")
    db = tmp_path / "risk.csv"
    db.write_text("credit_code,level\n０７５５A,high\n91B,low\n")
    keys = tmp_path / "keys.csv"
    keys.write_text("code\n0755A\n91C\n")
    server = meshmpc("pir", "serve", "--config", cfg, "--party", "fin", "--db", str(db),
                     "--key", "credit_code", "--client", "bank", "--client", "telco",
                     "--watch", "0.2")
    try:
        first = _query(cfg, "bank", keys, tmp_path / "h1.csv")
        assert first.wait(120) == 0, first.stderr.read() if first.stderr else ""
        assert _found(tmp_path / "h1.csv") == {"0755A": True, "91C": False}
        together = [_query(cfg, p, keys, tmp_path / f"h-{i}.csv")
                    for i, p in enumerate(["bank", "telco", "bank"])]
        for proc in together:
            assert proc.wait(120) == 0, proc.stderr.read() if proc.stderr else ""
        assert all(_found(tmp_path / f"h-{i}.csv")["0755A"] for i in range(3))
        time.sleep(0.3)
        db.write_text("credit_code,level\n91C,high\n")
        time.sleep(2.0)  # several watch periods: the rebuilt version is being served
        last = _query(cfg, "bank", keys, tmp_path / "h2.csv")
        assert last.wait(120) == 0, last.stderr.read() if last.stderr else ""
        assert _found(tmp_path / "h2.csv") == {"0755A": False, "91C": True}
        assert server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "reloaded" in err and err.count("session with") >= 10


def test_keys_and_lists_follow_the_shared_rule_with_1_based_rows(tmp_path: Path, capsys) -> None:
    import pytest

    from meshmpc.data.keynorm import KeyRule
    from meshmpc.pir.service import TextOptions, load_rule_database, normalised_keys
    from meshmpc.userinput import UserError

    keys = tmp_path / "keys.csv"
    keys.write_bytes('code\n０７５５A\n""\n 0755A\n深圳B\n'.encode("gbk"))
    asked = normalised_keys(str(keys), None, KeyRule(casefold=True), TextOptions("gbk"))
    assert asked == [b"0755a", "深圳b".encode()]
    err = capsys.readouterr().err
    assert "1 empty keys skipped (rows [2])" in err
    assert "1 repeated keys asked once (rows [3])" in err
    risk = tmp_path / "risk.csv"
    risk.write_text("code,level\n91A,high\n,low\n91A ,mid\n")
    with pytest.raises(UserError, match=r"empty key \(rows \[2\]\)"):
        load_rule_database(str(risk), "code", KeyRule(), None, False)
    risk.write_text("code,level\n91A,high\n91B,low\n91A ,mid\n")
    with pytest.raises(UserError, match=r"more than once \(rows \[1, 3\]\)"):
        load_rule_database(str(risk), "code", KeyRule(), None, False)
