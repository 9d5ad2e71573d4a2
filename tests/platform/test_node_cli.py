"""`meshmpc node init|serve|status` as an operator runs them."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

from meshmpc.cli import main


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_init_serve_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MESHMPC_PASSWORD", "correct horse battery")
    port = _free_port()
    node_dir = tmp_path / "bank"
    assert main(["node", "init", "--party", "bank", "--dir", str(node_dir),
                 "--http-listen", f"127.0.0.1:{port}"]) == 0
    out = capsys.readouterr().out
    assert "otpauth://totp/" in out and "public key" in out
    assert (node_dir / "keys" / "bank.key").stat().st_mode & 0o077 == 0
    assert main(["node", "init", "--party", "bank", "--dir", str(node_dir)]) == 2
    server = subprocess.Popen([sys.executable, "-m", "meshmpc.cli", "node", "serve", "--dir",
                               str(node_dir)], env={**os.environ}, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        assert main(["node", "status", "--dir", str(node_dir)]) == 0
        assert "node bank: ok" in capsys.readouterr().out
    finally:
        server.terminate()
        server.wait(10)
    assert main(["node", "status", "--dir", str(node_dir)]) == 1


def test_unknown_node_setting_named_with_suggestion(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MESHMPC_PASSWORD", "correct horse battery")
    node_dir = tmp_path / "gov"
    assert main(["node", "init", "--party", "gov", "--dir", str(node_dir)]) == 0
    text = (node_dir / "node.toml").read_text()
    (node_dir / "node.toml").write_text('http_lisen = "127.0.0.1:1"\n' + text)
    assert main(["node", "status", "--dir", str(node_dir)]) == 2
    assert "did you mean 'http_listen'" in capsys.readouterr().err


def test_purpose_retention_must_be_days(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MESHMPC_PASSWORD", "correct horse battery")
    node_dir = tmp_path / "fin"
    assert main(["node", "init", "--party", "fin", "--dir", str(node_dir)]) == 0
    with open(node_dir / "node.toml", "a") as fh:
        fh.write('marketing = "forever"\n')
    assert main(["node", "status", "--dir", str(node_dir)]) == 2
    assert "purposes.marketing" in capsys.readouterr().err
