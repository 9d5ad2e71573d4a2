"""PSI progress: every long phase ticks with rate and ETA, and the results do not change.

In process (KKRT, RR22, with small batches so that each phase has several),
and as two ``meshmpc psi`` processes (ECDH): with ``--progress`` the phase
lines show an ETA on stderr; with ``--quiet`` stderr carries none of them;
the outputs are the same rows either way, and the right ones.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.net import run_parties
from meshmpc.net.local import make_local_cluster
from meshmpc.progress import Progress
from meshmpc.psi import kkrt, rr22
from meshmpc.psi.protocols import run_protocol

PHASES = {
    "kkrt": {"bank": ["kkrt: OT extension", "kkrt: OPRF hashing",
                      "kkrt: receiving gov's OPRF values"],
             "gov": ["kkrt: code words", "kkrt: OT extension", "kkrt: OPRF values",
                     "kkrt: sending OPRF values to bank"]},
    "rr22": {"bank": ["rr22: sending the OKVS to gov", "rr22: OPRF decoding",
                      "rr22: receiving gov's OPRF values"],
             "gov": ["rr22: receiving bank's OKVS", "rr22: OPRF values",
                     "rr22: sending OPRF values to bank"]},
}


def _digests(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), np.uint8).reshape(-1, 16)


def _run(protocol: str, sets: dict[str, np.ndarray],
         streams: dict[str, io.StringIO] | None) -> dict[str, np.ndarray]:
    sizes = {p: len(d) for p, d in sets.items()}

    async def party(ctx):  # noqa: ANN001, ANN202
        progress = (Progress(f"psi {ctx.party}", True, 0.0, streams[ctx.party])
                    if streams is not None else None)
        outcome = await run_protocol(ctx, protocol, ["bank", "gov"], "bank", sets[ctx.party],
                                     sizes, "all", 1, None, None, progress)
        return sets[ctx.party][outcome.matched]

    return run_parties(["bank", "gov"], party)


@pytest.mark.parametrize("protocol", ["kkrt", "rr22"])
def test_each_phase_ticks_with_eta_and_results_are_unchanged(
        protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kkrt, "SEND_ROWS", 1024)
    monkeypatch.setattr(kkrt, "CHUNK_OTS", 1024)
    monkeypatch.setattr(rr22, "SEND_ROWS", 1024)
    gov = _digests(6000)
    bank = np.concatenate([_digests(3000), gov[::3]])
    truth = {bytes(r) for r in gov[::3]}
    quiet = _run(protocol, {"bank": bank, "gov": gov}, None)
    streams = {"bank": io.StringIO(), "gov": io.StringIO()}
    shown = _run(protocol, {"bank": bank, "gov": gov}, streams)
    for result in (quiet, shown):
        assert np.array_equal(result["bank"], result["gov"])
        assert {bytes(r) for r in result["bank"]} == truth and len(result["bank"]) == 2000
    for party, names in PHASES[protocol].items():
        text = streams[party].getvalue()
        for name in names:
            ticks = re.findall(rf"^psi {party}: {re.escape(name)} [\d,]+/[\d,]+ +[\d.]+%, "
                               rf"[\d,]+/s, ETA \d+ s", text, re.M)
            assert ticks, f"{party}: no tick with ETA for {name!r} in\n{text}"
            assert re.search(rf"^psi {party}: {re.escape(name)}: [\d,]+ \w+ in [\d.]+ s",
                             text, re.M), f"{party}: no final line for {name!r}"


def _inputs(tmp: Path, n: int) -> set[str]:
    codes = {"bank": [f"0{i:09d}" for i in range(n)],
             "gov": [f"0{i:09d}" for i in range(n // 2, n + n // 2)]}
    for party, keys in codes.items():
        pacsv.write_csv(pa.table({"code": keys, f"{party}_v": [f"0{i}" for i in range(n)]}),
                        tmp / f"{party}.csv")
    return set(codes["bank"]) & set(codes["gov"])


def _start_psi(cfg: Path, tmp: Path, out: str, *flags: str) -> dict[str, subprocess.Popen[str]]:
    procs = {}
    for party, peer in (("bank", "gov"), ("gov", "bank")):
        procs[party] = subprocess.Popen(
            [sys.executable, "-m", "meshmpc.cli", "psi", "--config", str(cfg), "--party", party,
             "--peer", peer, "--input", str(tmp / f"{party}.csv"), "--key", "code",
             "--output", str(tmp / f"{party}-{out}.csv"), "--protocol", "ecdh", "--workers",
             "0", *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return procs


def _stderr(procs: dict[str, subprocess.Popen[str]]) -> dict[str, str]:
    errs = {}
    for party, proc in procs.items():
        _, errs[party] = proc.communicate(timeout=180)
        assert proc.returncode == 0, errs[party]
    return errs


def _rows(path: Path) -> list[dict[str, str]]:
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"code": pa.string(), "bank_v": pa.string(), "gov_v": pa.string()}))
    return sorted(table.to_pylist(), key=lambda r: r["code"])


KEYS = 20_000


def test_psi_command_shows_eta_on_stderr_and_none_with_quiet(tmp_path: Path) -> None:
    runs = {}
    for name, flags in (("shown", ["--progress"]), ("quiet", ["--progress", "--quiet"])):
        folder = tmp_path / name
        folder.mkdir()
        config, _ = make_local_cluster(["bank", "gov"], folder)
        assert config.path is not None
        # enough keys that the exponentiations outlast the first progress line (0.1 s) on
        # a quiet machine too: 2,000 keys took 0.18 s there, in too few batches to show one
        common = _inputs(folder, KEYS)
        runs[name] = _start_psi(config.path, folder, "out", *flags)  # both runs at once
    shown, quiet = _stderr(runs["shown"]), _stderr(runs["quiet"])
    for party, err in shown.items():
        assert re.search(rf"^psi {party}: ecdh: exponentiations \(own keys, then \w+'s\) "
                         rf"[\d,]+/{2 * KEYS:,} +[\d.]+%, [\d,]+/s, ETA \d+ s", err, re.M), err
        assert re.search(rf"^psi {party}: ecdh: exponentiations .*: {2 * KEYS:,} points in",
                         err, re.M), err
        assert re.search(rf"^psi {party}: writing .*{party}-out.csv: {KEYS // 2:,} rows in",
                         err, re.M), err
    assert quiet == {"bank": "", "gov": ""}
    for party in ("bank", "gov"):
        rows = _rows(tmp_path / "shown" / f"{party}-out.csv")
        assert rows == _rows(tmp_path / "quiet" / f"{party}-out.csv")
        assert {r["code"] for r in rows} == common and len(rows) == KEYS // 2


def test_multiparty_psi_counts_its_exponentiations() -> None:
    common = _digests(50)
    sets = {p: np.concatenate([_digests(100), common]) for p in ("bank", "gov", "fin")}
    sizes = {p: len(d) for p, d in sets.items()}
    streams = {p: io.StringIO() for p in sets}

    async def party(ctx):  # noqa: ANN001, ANN202
        progress = Progress(f"psi {ctx.party}", True, 0.0, streams[ctx.party])
        outcome = await run_protocol(ctx, "ecdh-mp", ["bank", "gov", "fin"], "bank",
                                     sets[ctx.party], sizes, "receiver", 0, None, None,
                                     progress)
        return outcome.matched

    results = run_parties(["bank", "gov", "fin"], party)
    assert {bytes(r) for r in sets["bank"][results["bank"]]} == {bytes(r) for r in common}
    for name, stream in streams.items():
        final = re.findall(rf"^psi {name}: ecdh-mp: exponentiations: ([\d,]+) points in",
                           stream.getvalue(), re.M)
        assert len(final) == 1 and int(final[0].replace(",", "")) >= 150, stream.getvalue()


def test_unbalanced_server_table_ticks_with_eta(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from meshmpc.psi import unbalanced

    monkeypatch.setattr(unbalanced, "OPRF_BATCH", 64)
    server = _digests(400)
    sets = {"bank": np.concatenate([_digests(20), server[:30]]), "gov": server}
    sizes = {p: len(d) for p, d in sets.items()}
    stream = io.StringIO()

    async def party(ctx):  # noqa: ANN001, ANN202
        progress = Progress(f"psi {ctx.party}", ctx.party == "gov", 0.0, stream)
        outcome = await run_protocol(ctx, "unbalanced", ["bank", "gov"], "bank",
                                     sets[ctx.party], sizes, "all", 0,
                                     tmp_path / ctx.party, None, progress)
        return sets[ctx.party][outcome.matched]

    results = run_parties(["bank", "gov"], party)
    assert {bytes(r) for r in results["bank"]} == {bytes(r) for r in server[:30]}
    assert np.array_equal(results["bank"], results["gov"])
    text = stream.getvalue()
    name = re.escape("unbalanced: OPRF table of the server's set")
    assert re.search(rf"^psi gov: {name} [\d,]+/400 +[\d.]+%, [\d,]+/s, ETA \d+ s", text, re.M)
    assert re.search(rf"^psi gov: {name}: 400 keys in", text, re.M), text
