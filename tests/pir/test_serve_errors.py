"""``pir serve``: a bad --db, --key, --key-file or --client is one line, before listening."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from meshmpc.cli import main
from meshmpc.net.local import make_local_cluster


@pytest.mark.parametrize(("change", "message"), [
    ({"--db": "nosuch.csv"}, "nosuch.csv: file not found"),
    ({"--key": "code"}, "no key column 'code'; columns are ['credit_code', 'level']"),
    ({"--key-file": "/nonexistent.key"}, "/nonexistent.key: field 'key_file': cannot read"),
    ({"--client": "nobody"}, "no party 'nobody'"),
])
def test_local_mistakes_stop_serve_at_once(tmp_path: Path, change: dict[str, str],
                                           message: str) -> None:
    make_local_cluster(["fin", "bank"], tmp_path)
    (tmp_path / "risk.csv").write_text("credit_code,level\n91A,high\n")
    options = {"--config": str(tmp_path / "cluster.toml"), "--party": "fin",
               "--db": str(tmp_path / "risk.csv"), "--key": "credit_code", "--client": "bank"}
    options.update({k: v if k != "--db" else str(tmp_path / v) for k, v in change.items()})
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["pir", "serve", "--quiet", *(x for kv in options.items() for x in kv)])
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err.getvalue(), lines
