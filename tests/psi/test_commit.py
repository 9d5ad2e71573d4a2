"""The end of a PSI job: local checks first, two-phase commit, reconcile after a lost link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.net import run_parties
from meshmpc.psi import KeyOptions, PsiJob, run_job
from meshmpc.psi.commit import (
    COMMITTED,
    PREPARED,
    Commit,
    JournalEntry,
    load_journal,
    reconcile_job,
)
from meshmpc.psi.errors import PsiInputError


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("MESHMPC_STATE_DIR", str(state))
    return state


def _inputs(tmp: Path) -> tuple[Path, Path]:
    bank = tmp / "bank.csv"
    gov = tmp / "gov.csv"
    pacsv.write_csv(pa.table({"code": [f"c{i}" for i in range(20)], "v": list(range(20))}), bank)
    pacsv.write_csv(pa.table({"code": [f"c{i}" for i in range(10, 30)],
                              "w": list(range(20))}), gov)
    return bank, gov


def _jobs(tmp: Path, **gov_over: Any) -> dict[str, PsiJob]:
    bank, gov = _inputs(tmp)
    jobs = {
        "bank": PsiJob(input=bank, keys=KeyOptions(("code",)), peers=["gov"],
                       output=tmp / "bank-out.csv", workers=0),
        "gov": PsiJob(input=gov, keys=KeyOptions(("code",)), peers=["bank"],
                      output=tmp / "gov-out.csv", workers=0),
    }
    for name, value in gov_over.items():
        setattr(jobs["gov"], name, value)
    return jobs


def _run(jobs: dict[str, PsiJob]) -> dict[str, Any]:
    async def party(ctx):  # noqa: ANN001, ANN202
        try:
            return await run_job(ctx, jobs[ctx.party])
        except Exception as exc:  # noqa: BLE001 - the test looks at each party's outcome
            ctx.mesh.fail_peers(ctx.party, f"party {ctx.party} failed: {exc}")
            return exc

    return run_parties(["bank", "gov"], party)


def test_unwritable_output_fails_before_the_protocol_and_nobody_keeps_output(
        tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, output=Path("/proc/meshmpc-test/x.csv"))
    res = _run(jobs)
    assert isinstance(res["gov"], PsiInputError)
    assert "/proc/meshmpc-test/x.csv" in str(res["gov"]) and "--output" in str(res["gov"])
    assert isinstance(res["bank"], Exception)
    assert not (tmp_path / "bank-out.csv").exists()
    assert not list(tmp_path.glob(".bank-out.csv.partial*"))


def test_undecodable_text_fails_at_the_owner_before_the_protocol(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    gbk = tmp_path / "gov-gbk.csv"
    gbk.write_bytes("code,name\nc12,深圳市腾达\nc13,广州\n".encode("gbk"))
    jobs["gov"].input = gbk
    res = _run(jobs)
    assert isinstance(res["gov"], PsiInputError) and "gb18030" in str(res["gov"])
    assert "line 2" in str(res["gov"])
    assert not (tmp_path / "bank-out.csv").exists()
    jobs = _jobs(tmp_path, input=gbk, encoding="gbk")
    res = _run(jobs)
    assert res["gov"].intersection == 2
    rows = pacsv.read_csv(tmp_path / "gov-out.csv").to_pylist()
    assert sorted(r["name"] for r in rows) == ["广州", "深圳市腾达"]


async def _crash_after_prepare(self: Commit, writer: Any) -> Path | None:
    """gov writes and records 'prepared', then dies before it votes."""
    if self.ctx.party != "gov":
        return await ORIGINAL_RUN(self, writer)
    entry = JournalEntry(self.job_id, "gov", self.parties, PREPARED, str(writer.path),
                         str(writer.tmp))
    assert self._prepare(writer, entry) is None
    raise RuntimeError("gov lost power")


ORIGINAL_RUN = Commit.run


def test_lost_link_between_phases_keeps_output_in_doubt_then_reconcile_commits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _state: Path) -> None:
    monkeypatch.setattr(Commit, "run", _crash_after_prepare)
    res = _run(_jobs(tmp_path))
    assert "in doubt" in str(res["bank"]) and "reconcile" in str(res["bank"])
    assert not (tmp_path / "bank-out.csv").exists() and not (tmp_path / "gov-out.csv").exists()
    assert (tmp_path / "bank-out.csv.in-doubt").exists()
    [entry] = load_journal(_state, "bank").values()
    assert entry.state == PREPARED
    monkeypatch.setattr(Commit, "run", ORIGINAL_RUN)
    settled = run_parties(["bank", "gov"], reconcile_job, ["bank", "gov"])
    assert settled["bank"]["settled"] == {entry.job_id: COMMITTED}
    assert settled["gov"]["settled"] == {entry.job_id: COMMITTED}
    bank = pacsv.read_csv(tmp_path / "bank-out.csv").column("code").to_pylist()
    gov = pacsv.read_csv(tmp_path / "gov-out.csv").column("code").to_pylist()
    assert bank == gov and sorted(bank) == sorted(f"c{i}" for i in range(10, 20))
    assert not (tmp_path / "bank-out.csv.in-doubt").exists()


def test_reconcile_discards_when_the_peer_never_prepared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _state: Path) -> None:
    monkeypatch.setattr(Commit, "run", _crash_after_prepare)
    _run(_jobs(tmp_path))
    monkeypatch.setattr(Commit, "run", ORIGINAL_RUN)
    for path in _state.glob("gov-*.json"):  # gov crashed before its journal reached disk
        path.unlink()
    settled = run_parties(["bank", "gov"], reconcile_job, ["bank", "gov"])
    assert list(settled["bank"]["settled"].values()) == ["aborted"]
    assert not (tmp_path / "bank-out.csv").exists()
    assert not (tmp_path / "bank-out.csv.in-doubt").exists()


def test_both_outputs_appear_together_and_are_journalled(tmp_path: Path, _state: Path) -> None:
    res = _run(_jobs(tmp_path))
    assert res["bank"].intersection == 10 and res["gov"].intersection == 10
    assert [e.state for e in load_journal(_state, "bank").values()] == [COMMITTED]
    assert [e.state for e in load_journal(_state, "gov").values()] == [COMMITTED]
