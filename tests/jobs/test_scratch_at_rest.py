"""A step's scratch files are only ciphertext while it runs, and gone when it ends.

``psi.align`` with tiny buckets runs its pairwise PSIs bucketed: while a bucket
is being loaded, every file under the output folder (step folders, PSI scratch,
bucket files, pair outputs) is scanned. A crashed run's scratch is ciphertext
and ``meshmpc data purge`` removes it; a live run's is kept.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshmpc.data import scratchdir
from meshmpc.data.purge import PURGE_LOG, purge_scratch
from meshmpc.data.vault import MAGICS, STREAM_MAGICS
from meshmpc.jobs.artefacts import read_table
from meshmpc.jobs.errors import PeerStepError, StepFailedError
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.psi import stream

BANK, GOV = range(0, 90), range(30, 120)


def _code(i: int) -> str:
    return f"91110108{i:09d}X"


def _data(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "bank.csv").write_text("code,x,label\n" + "".join(
        f"{_code(i)},{i},{i % 2}\n" for i in BANK))
    (tmp_path / "gov.csv").write_text("gcode,y\n" + "".join(f"{_code(i)},{i}\n" for i in GOV))
    return {"name": "al", "steps": [{"id": "align", "component": "psi.align",
                                     "params": {"protocol": "rr22"}}],
            "parties": {"bank": {"data": "bank.csv", "key": "code", "label": "label"},
                        "gov": {"data": "gov.csv", "key": "gcode"}}}


def _scan(out: Path) -> dict[Path, str]:
    """Every file under ``out`` that holds data, with what is wrong with it ("" if sealed and
    free of credit codes)."""
    found = {}
    codes = [_code(i).encode() for i in BANK] + [_code(i).encode() for i in GOV]
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if path.name in (scratchdir.LOCK, "manifest.json") or not raw:
            continue
        found[path] = ("not sealed" if raw[:4] not in MAGICS + STREAM_MAGICS else
                       "shows a credit code" if any(c in raw for c in codes) else "")
    return found


def test_scratch_is_ciphertext_mid_step_and_gone_after(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("meshmpc.psi.job.DEFAULT_BUCKET_ROWS", 16)  # bucketed pair PSIs
    monkeypatch.setattr("meshmpc.psi.stream.MEMORY_SPILL_ROWS", 0)  # buckets on disk
    out = tmp_path / "out"
    scans: list[dict[Path, str]] = []
    load = stream.Spill.load

    def scanning_load(self: stream.Spill, b: int) -> Any:
        if b == 1:
            scans.append(_scan(out))
        return load(self, b)

    monkeypatch.setattr(stream.Spill, "load", scanning_load)
    results = asyncio.run(run_job_in_memory(_data(tmp_path), out, base_dir=tmp_path,
                                            vault_dir=tmp_path / "vaults"))
    assert results["bank"]["steps"]["align"]["status"] == "ran"
    assert len(scans) == 2  # one scan per party, while its buckets were being read
    for files in scans:
        assert {p: bad for p, bad in files.items() if bad} == {}
        names = {p.name for p in files}
        assert any(n.startswith("bucket-") for n in names), names
        assert any(".psi-spill-" in str(p) for p in files)
    leftovers = [p for p in out.rglob("*") if p.name.startswith((".tmp-", ".psi", ".scratch"))]
    assert leftovers == []
    from meshmpc.jobs.local import party_vault

    aligned = read_table(out / "al" / "bank" / "align", "aligned",
                         party_vault("bank", None, tmp_path / "vaults"))
    assert sorted(aligned.column("code").to_pylist()) == sorted(
        _code(i) for i in set(BANK) & set(GOV))


def test_a_failed_step_leaves_no_scratch_at_any_party(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("meshmpc.psi.job.DEFAULT_BUCKET_ROWS", 16)
    monkeypatch.setattr("meshmpc.psi.stream.MEMORY_SPILL_ROWS", 0)  # buckets on disk
    out = tmp_path / "out"
    load = stream.Spill.load

    def failing_load(self: stream.Spill, b: int) -> Any:
        if b == 2 and "/gov/" in str(self.directory):
            raise OSError("disk gone (test)")
        return load(self, b)

    monkeypatch.setattr(stream.Spill, "load", failing_load)
    results = asyncio.run(run_job_in_memory(_data(tmp_path), out, base_dir=tmp_path))
    assert isinstance(results["gov"], StepFailedError)
    assert isinstance(results["bank"], PeerStepError | StepFailedError)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != scratchdir.LOCK]
    assert [p for p in files if p.name != "manifest.json"] == []
    assert not [p for p in out.rglob(".tmp-*")] and not [p for p in out.rglob(".psi*")]


CRASHING_WRITER = """
import sys, time
from pathlib import Path
import numpy as np, pyarrow as pa
from meshmpc.data.scratchdir import held, scratch_dir
from meshmpc.psi.stream import Spill
party = Path(sys.argv[1])
with held(party):
    step = party / ".tmp-align-dead"
    step.mkdir()
    with scratch_dir(step / ".psi", ".psi-spill-") as tmp:
        spill = Spill(tmp, 2)
        codes = pa.array(["91110108000000001X", "91110108000000002X"])
        spill.add(pa.table({"code": codes}), np.array([0, 1]))
        spill.close()
        print("ready", flush=True)
        time.sleep(600)
"""


def test_a_crash_leaves_ciphertext_that_purge_removes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    party = out / "al" / "bank"
    live = out / "al" / "gov"
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(party)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert scratchdir.in_use(party)
        assert purge_scratch(out) == []  # a live run's scratch is kept
        buckets = list(party.rglob("bucket-*.arrow"))
        assert len(buckets) == 2
        for path in buckets:
            raw = path.read_bytes()
            assert raw[:4] in STREAM_MAGICS and b"9111010800000000" not in raw
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not scratchdir.in_use(party)
    with scratchdir.held(live):  # another party's run, still running here
        (live / ".tmp-align-live").mkdir()
        listed = purge_scratch(out, dry_run=True)
        assert [p.path.name for p in listed] == [".tmp-align-dead"]
        assert (party / ".tmp-align-dead").exists()  # a dry run deletes nothing
        gone = purge_scratch(out)
        assert [p.path for p in gone] == [party / ".tmp-align-dead"] and gone[0].bytes > 0
        assert not (party / ".tmp-align-dead").exists() and (live / ".tmp-align-live").exists()
    assert "scratch" in (out / PURGE_LOG).read_text()


def test_a_dead_writers_partial_file_is_purged_a_live_ones_kept(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = tmp_path / f".aligned.parquet.partial-{proc.pid}"
    mine = tmp_path / f".aligned.parquet.partial-{os.getpid()}"
    dead.write_bytes(b"x")
    mine.write_bytes(b"y")
    assert [i.path for i in purge_scratch(tmp_path)] == [dead]
    assert mine.exists()


def test_one_party_folder_is_run_by_one_process_at_a_time(tmp_path: Path) -> None:
    busy = pytest.raises(scratchdir.ScratchBusy, match="in use")
    with scratchdir.held(tmp_path), busy, scratchdir.held(tmp_path):
        pass
    with scratchdir.held(tmp_path):  # released when the holder ended
        assert scratchdir.in_use(tmp_path)
    assert not scratchdir.in_use(tmp_path)


def test_a_second_run_into_a_running_party_folder_is_refused(tmp_path: Path) -> None:
    """While a run holds ``out/<job>/<party>/``, another run of that job and party is refused
    (it would delete the first one's step folders as leftovers)."""
    from meshmpc.jobs.errors import JobError

    raw = {"name": "two", "parties": {"bank": {}, "gov": {}},
           "steps": [{"id": "e", "component": "t.emit", "params": {"scale": 5}}]}
    components = {"t.emit": "jobs_testing_components:emit"}
    with scratchdir.held(tmp_path / "out" / "two" / "gov"):
        results = asyncio.run(asyncio.wait_for(run_job_in_memory(
            raw, tmp_path / "out", components=components), 60))
    assert isinstance(results["gov"], JobError) and "already running" in str(results["gov"])
    assert not isinstance(results["bank"], dict)
    again = asyncio.run(run_job_in_memory(raw, tmp_path / "out", components=components))
    assert again["gov"]["steps"]["e"]["status"] == "ran"


def test_scratch_a_component_left_unlisted_is_sealed_not_kept_in_clear(tmp_path: Path) -> None:
    from meshmpc.jobs.artefacts import read_bytes
    from meshmpc.jobs.local import party_vault

    raw = {"name": "lit", "parties": {"bank": {}}, "steps": [{"id": "s", "component": "t.l"}]}
    results = asyncio.run(run_job_in_memory(
        raw, tmp_path / "out", components={"t.l": "jobs_testing_components:litter"},
        vault_dir=tmp_path / "keys"))
    assert results["bank"]["steps"]["s"]["status"] == "ran"
    step = tmp_path / "out" / "lit" / "bank" / "s"
    left = (step / "tmp" / "rows.csv").read_bytes()
    assert left[:4] in MAGICS and b"91110108000000007X" not in left
    vault = party_vault("bank", None, tmp_path / "keys")
    assert b"91110108000000007X" in read_bytes(step, "tmp/rows.csv", vault)
