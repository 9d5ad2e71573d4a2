"""``meshmpc psi`` end to end: separate processes over the real encrypted mesh."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from meshmpc.net.local import make_local_cluster


def _command(cfg: Path, party: str, peer: str, tmp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "meshmpc.cli", "psi", "--config", str(cfg), "--party", party,
            "--peer", peer, "--input", str(tmp / f"{party}.csv"), "--key", "code",
            "--output", str(tmp / f"{party}-out.csv"), *extra]


def _inputs(tmp: Path, n: int) -> None:
    for party, start in (("bank", 0), ("gov", n // 2)):
        codes = [f"c{i:08d}" for i in range(start, start + n)]
        pacsv.write_csv(pa.table({"code": codes, "v": list(range(n))}), tmp / f"{party}.csv")


def test_two_processes_align_rows(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["bank", "gov"], tmp_path)
    assert config.path is not None
    _inputs(tmp_path, 200)
    procs = [subprocess.Popen(_command(config.path, p, q, tmp_path, "--protocol", "kkrt"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for p, q in (("bank", "gov"), ("gov", "bank"))]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    summary = json.loads(outs[0][0])
    assert summary["intersection"] == 100
    bank = pacsv.read_csv(tmp_path / "bank-out.csv").column("code").to_pylist()
    gov = pacsv.read_csv(tmp_path / "gov-out.csv").column("code").to_pylist()
    assert bank == gov and sorted(bank) == [f"c{i:08d}" for i in range(100, 200)]


def test_dead_peer_stops_the_other_without_output(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["bank", "gov"], tmp_path)
    assert config.path is not None
    _inputs(tmp_path, 30000)
    extra = ("--protocol", "ecdh", "--workers", "1", "--progress")
    bank = subprocess.Popen(_command(config.path, "bank", "gov", tmp_path, *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gov = subprocess.Popen(_command(config.path, "gov", "bank", tmp_path, *extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert gov.stderr is not None
    line = gov.stderr.readline()
    while line and b"running ecdh" not in line:  # wait until gov is inside the protocol
        line = gov.stderr.readline()
    time.sleep(0.3)
    assert gov.poll() is None, "gov finished before it could be killed: enlarge the inputs"
    gov.send_signal(signal.SIGKILL)
    gov.wait()
    _, err = bank.communicate(timeout=60)
    assert bank.returncode != 0
    assert b"gov" in err
    assert not (tmp_path / "bank-out.csv").exists()
    assert not list(tmp_path.glob(".bank-out.csv.partial*"))



def _cli(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    from meshmpc.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


def test_local_mistakes_are_one_line_errors_before_connecting(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["bank", "gov"], tmp_path)
    assert config.path is not None
    quote = tmp_path / "bank.csv"
    quote.write_text('code,name\nc1,"open quote\nc2,x\n')
    base = ["psi", "--config", str(config.path), "--party", "bank", "--peer", "gov",
            "--key", "code", "--connect-timeout", "1"]
    code, err = _cli(*base, "--input", str(quote))
    assert code == 2 and "row 1" in err and "quote" in err and len(err.strip().splitlines()) == 1
    _inputs(tmp_path, 10)
    code, err = _cli(*base, "--input", str(tmp_path / "bank.csv"), "--reveal", "receiver",
                     "--receiver", "gov", "--output", str(tmp_path / "o.csv"))
    assert code == 2 and "only gov learns rows" in err
    code, err = _cli(*base, "--input", str(tmp_path / "bank.csv"), "--reveal", "cardinality",
                     "--output", str(tmp_path / "o.csv"))
    assert code == 2 and "no party gets rows" in err
    code, err = _cli(*base, "--input", f"sqlite:///{tmp_path}/none.db?table=t")
    assert code == 2 and "sqlite:///" in err and "not found" in err


def test_help_states_every_default_and_reveal_meanings() -> None:
    import contextlib
    import io

    from meshmpc.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["psi", "--help"])
    text = " ".join(out.getvalue().split())
    assert "'cardinality' = only the receiver learns the intersection size" in text
    assert "(default: kkrt)" in text and "--encoding" in text and "--casefold" in text


def test_unknown_peer_and_receiver_are_named_before_connecting(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["bank", "gov"], tmp_path)
    assert config.path is not None
    _inputs(tmp_path, 10)
    base = ["psi", "--config", str(config.path), "--party", "bank", "--input",
            str(tmp_path / "bank.csv"), "--key", "code", "--connect-timeout", "1"]
    code, err = _cli(*base, "--peer", "gvo")
    assert code == 2 and "--peer 'gvo'" in err and "bank, gov" in err
    code, err = _cli(*base, "--peer", "gov", "--receiver", "fin")
    assert code == 2 and "--receiver 'fin'" in err


def test_bucket_progress_shows_rate_and_eta():
    from meshmpc.psi.stream import progress_text

    assert progress_text(250, 1000, 5.0) == "250/1,000  25.0%, 50/s, ETA 15 s"
    assert progress_text(1000, 1000, 5.0) == "1,000/1,000 100.0%, 200/s"
    assert progress_text(7, None, 0.0) == "7, 0/s"


def test_two_party_psi_in_a_four_party_cluster_links_only_its_parties(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["bank", "gov", "fin", "telco"], tmp_path)
    assert config.path is not None
    _inputs(tmp_path, 200)
    start = time.monotonic()
    procs = [subprocess.Popen(_command(config.path, p, q, tmp_path, "--connect-timeout", "60"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for p, q in (("bank", "gov"), ("gov", "bank"))]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert time.monotonic() - start < 50  # never waited for fin or telco
    assert json.loads(outs[0][0])["intersection"] == 100
    assert b"config fingerprint" in outs[0][1]
