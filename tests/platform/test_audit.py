"""The audit log detects every kind of tampering, and peers' anchors catch a re-signed rewrite."""

import json
import sqlite3

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from meshmpc.cli import main
from meshmpc.net.keys import public_key_to_b64
from meshmpc.net.memory import run_parties
from meshmpc.platform.audit import AuditError, AuditLog, Checkpoint, verify
from meshmpc.platform.audit_sync import exchange_checkpoints

KEY = SigningKey(b"\x01" * 32)


def _log(tmp_path, entries=30, every=10):
    url = f"sqlite:///{tmp_path / 'node.db'}"
    log = AuditLog(url, "bank", KEY, checkpoint_every=every, checkpoint_seconds=3600)
    for i in range(entries):
        log.append("job.step", "alice", {"job": "j1", "step": f"s{i}", "revealed_to": ["bank"]})
    return url, log


def _raw(tmp_path):
    """An attacker with the database file: drops the triggers, then edits at will."""
    conn = sqlite3.connect(tmp_path / "node.db")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def _problems(url):
    return verify(url, "bank", KEY.verify_key).problems


def test_untouched_log_verifies(tmp_path):
    url, log = _log(tmp_path)
    report = verify(url, "bank", KEY.verify_key)
    assert report.ok and report.entries == 30 and report.checkpoints == 3


def test_database_refuses_update_and_delete(tmp_path):
    url, _ = _log(tmp_path)
    engine = sa.create_engine(url)
    for sql in ("UPDATE audit_entries SET actor='mallory' WHERE seq=3",
                "DELETE FROM audit_entries WHERE seq=3", "DELETE FROM audit_checkpoints"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(sql)


def test_edited_entry_detected(tmp_path):
    url, _ = _log(tmp_path)
    conn = _raw(tmp_path)
    detail = json.loads(conn.execute("SELECT detail FROM audit_entries WHERE seq=5").fetchone()[0])
    detail["revealed_to"] = []
    conn.execute("UPDATE audit_entries SET detail=? WHERE seq=5",
                 (json.dumps(detail, sort_keys=True, separators=(",", ":")),))
    conn.commit()
    assert any("entry 5" in p for p in _problems(url))


def test_edited_column_detected(tmp_path):
    url, _ = _log(tmp_path)
    conn = _raw(tmp_path)
    conn.execute("UPDATE audit_entries SET actor='mallory' WHERE seq=7")
    conn.commit()
    assert any("entry 7:" in p for p in _problems(url))


def test_deleted_entry_detected(tmp_path):
    url, _ = _log(tmp_path)
    conn = _raw(tmp_path)
    conn.execute("DELETE FROM audit_entries WHERE seq=12")
    conn.commit()
    problems = _problems(url)
    assert any("entry 12: missing" in p for p in problems)


def test_reordered_entries_detected(tmp_path):
    url, _ = _log(tmp_path)
    conn = _raw(tmp_path)
    cols = "ts, kind, actor, detail, hash"
    a, b = (conn.execute(f"SELECT {cols} FROM audit_entries WHERE seq=?", (s,)).fetchone()
            for s in (3, 4))
    conn.execute("UPDATE audit_entries SET ts=?, kind=?, actor=?, detail=?, hash=? WHERE seq=3", b)
    conn.execute("UPDATE audit_entries SET ts=?, kind=?, actor=?, detail=?, hash=? WHERE seq=4", a)
    conn.commit()
    assert any("entry 3" in p for p in _problems(url))


def test_inserted_entry_detected(tmp_path):
    url, _ = _log(tmp_path, entries=20)
    conn = _raw(tmp_path)
    conn.execute("UPDATE audit_entries SET seq = seq + 1000 WHERE seq > 10")
    conn.execute("UPDATE audit_entries SET seq = seq - 999 WHERE seq > 1000")
    row = conn.execute("SELECT ts, kind, actor, detail, hash FROM audit_entries WHERE seq=10"
                       ).fetchone()
    conn.execute("INSERT INTO audit_entries (seq, ts, kind, actor, detail, hash) "
                 "VALUES (11, ?, ?, ?, ?, ?)", row)
    conn.commit()
    assert _problems(url)


def test_resigned_rewrite_is_caught_only_by_peer_anchors(tmp_path):
    url, log = _log(tmp_path, entries=25, every=10)
    anchored = log.checkpoint()  # head at 25, handed to a peer
    # The node rewrites its own history from scratch with its own key (it holds it).
    forged_dir = tmp_path / "forged"
    forged_dir.mkdir()
    forged_url = f"sqlite:///{forged_dir / 'node.db'}"
    forged = AuditLog(forged_url, "bank", KEY, checkpoint_every=10, checkpoint_seconds=3600)
    for i in range(25):
        forged.append("job.step", "alice", {"job": "j1", "step": f"s{i}", "revealed_to": []})
    forged.checkpoint()
    assert verify(forged_url, "bank", KEY.verify_key).ok  # self-consistent on its own
    report = verify(forged_url, "bank", KEY.verify_key, [anchored])
    assert any("anchored head at entry 25" in p for p in report.problems)
    # Truncating the tail after the peer anchored a later head is caught as well.
    short_dir = tmp_path / "short"
    short_dir.mkdir()
    short_url = f"sqlite:///{short_dir / 'node.db'}"
    short = AuditLog(short_url, "bank", KEY)
    short.append_many([("job.step", "alice", {"i": i}) for i in range(3)])
    assert any("no such entry" in p for p in verify(short_url, "bank", KEY.verify_key,
                                                    [anchored]).problems)


def test_forged_checkpoint_signature_detected(tmp_path):
    url, _ = _log(tmp_path)
    conn = _raw(tmp_path)
    conn.execute("UPDATE audit_checkpoints SET signature=? WHERE seq=10", (b"\x00" * 64,))
    conn.commit()
    assert any("checkpoint at entry 10: signature invalid" in p for p in _problems(url))


def test_checkpoints_exchanged_and_anchored(tmp_path):
    keys = {p: SigningKey(bytes([i + 1]) * 32) for i, p in enumerate(["bank", "gov", "fin"])}

    async def party(ctx):
        log = AuditLog(f"sqlite:///{tmp_path / (ctx.party + '.db')}", ctx.party, keys[ctx.party])
        log.append("login", "admin", {})
        peer_keys = {p: keys[p].verify_key for p in ctx.peers}
        await exchange_checkpoints(ctx, log, peer_keys)
        return {p: len(log.anchors_of(p)) for p in ctx.peers}

    out = run_parties(["bank", "gov", "fin"], party)
    assert out == {"bank": {"gov": 1, "fin": 1}, "gov": {"bank": 1, "fin": 1},
                   "fin": {"bank": 1, "gov": 1}}


def test_anchor_with_bad_signature_or_conflicting_head_refused(tmp_path):
    url, log = _log(tmp_path)
    other = SigningKey(b"\x02" * 32)
    good = Checkpoint("gov", 4, b"\x11" * 32, 1.0,
                      bytes(other.sign(Checkpoint("gov", 4, b"\x11" * 32, 1.0, b"").message())
                            .signature))
    log.store_anchor(good, other.verify_key)
    log.store_anchor(good, other.verify_key)  # idempotent
    with pytest.raises(AuditError, match="bad signature"):
        log.store_anchor(Checkpoint("gov", 5, b"\x11" * 32, 1.0, b"\x00" * 64), other.verify_key)
    twin = Checkpoint("gov", 4, b"\x22" * 32, 1.0, b"")
    twin = Checkpoint("gov", 4, twin.head, 1.0, bytes(other.sign(twin.message()).signature))
    with pytest.raises(AuditError, match="two different heads"):
        log.store_anchor(twin, other.verify_key)


def test_cli_verify_exit_codes(tmp_path, capsys):
    url, log = _log(tmp_path)
    key = public_key_to_b64(KEY.verify_key)
    assert main(["audit", "verify", "--db", url, "--party", "bank", "--public-key", key]) == 0
    assert "30 entries" in capsys.readouterr().out
    conn = _raw(tmp_path)
    conn.execute("UPDATE audit_entries SET kind='nothing' WHERE seq=2")
    conn.commit()
    assert main(["audit", "verify", "--db", url, "--party", "bank", "--public-key", key,
                 "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and report["entries"] == 30


def test_entries_forwarded_to_syslog(tmp_path):
    import socket

    from meshmpc.platform.audit import syslog_forwarder

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    log = AuditLog(f"sqlite:///{tmp_path / 'n.db'}", "bank", KEY,
                   forward=syslog_forwarder(server.getsockname()))
    log.append("grant.create", "admin", {"dataset": "risk_list", "grantee": "gov"})
    message = server.recv(4096).decode()
    assert '"kind": "grant.create"' in message and '"grantee": "gov"' in message
    server.close()


def test_postgresql_log_verifies_and_refuses_rewrites(postgres):
    url = postgres.new_database().replace("postgresql://", "postgresql+psycopg://")
    log = AuditLog(url, "bank", KEY, checkpoint_every=5)
    log.append_many([("job.step", "alice", {"i": i}) for i in range(12)])
    assert verify(url, "bank", KEY.verify_key).ok
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_entries SET actor='mallory' WHERE seq=3")


def test_concurrent_appends_keep_one_chain(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    url, log = _log(tmp_path, entries=0, every=7)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: log.append("auth.login", f"user{i}", {"i": i}), range(200)))
    report = verify(url, "bank", KEY.verify_key)
    assert report.ok and report.entries == 200, report.problems
