"""PSI inputs go through the data tools' loader: SQL sources, text kept as read, one key rule."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.net import run_parties
from meshmpc.psi import KeyOptions, PsiJob, run_job
from meshmpc.psi.job import job_from_options
from meshmpc.userinput import UserError


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHMPC_STATE_DIR", str(tmp_path / "state"))


def _run(jobs: dict[str, PsiJob]) -> dict[str, Any]:
    async def party(ctx):  # noqa: ANN001, ANN202
        return await run_job(ctx, jobs[ctx.party])

    return run_parties(["bank", "gov"], party)


def _job(path: Path | str, peer: str, out: Path, **extra: Any) -> PsiJob:
    return PsiJob(input=path, keys=KeyOptions(("code",), **extra.pop("keys", {})),
                  peers=[peer], output=out, workers=0, **extra)


def test_sqlite_url_input_matches_plaintext(tmp_path: Path) -> None:
    db = tmp_path / "bank.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE apps (code TEXT, amount INTEGER)")
        conn.executemany("INSERT INTO apps VALUES (?, ?)", [(f"c{i}", i) for i in range(50)])
    gov = tmp_path / "gov.csv"
    pacsv.write_csv(pa.table({"code": [f"c{i}" for i in range(40, 90)]}), gov)
    url = f"sqlite:///{db}?table=apps"
    res = _run({"bank": _job(url, "gov", tmp_path / "b.csv"),
                "gov": _job(gov, "bank", tmp_path / "g.csv")})
    assert res["bank"].intersection == 10
    rows = pacsv.read_csv(tmp_path / "b.csv").to_pylist()
    assert sorted(r["amount"] for r in rows) == list(range(40, 50))
    assert job_from_options({"input": url, "keys": ["code"], "peers": ["gov"]}).input == url


def test_payload_values_travel_as_read(tmp_path: Path) -> None:
    bank = tmp_path / "bank.csv"
    bank.write_text("code,phone,amount\nc1,075510025723,00012\nc2,13800138000,7.50\n")
    gov = tmp_path / "gov.csv"
    gov.write_text("code\nc1\nc2\n")
    _run({"bank": _job(bank, "gov", tmp_path / "b.csv"),
          "gov": _job(gov, "bank", tmp_path / "g.csv")})
    text = (tmp_path / "b.csv").read_text()
    assert "075510025723" in text and "00012" in text and "7.50" in text


def test_full_width_codes_match_and_row_numbers_are_kept(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bank = tmp_path / "bank.csv"
    bank.write_text("code,v\n９１３１ＡＢ,1\n,2\nC2,3\nC2,4\n")
    gov = tmp_path / "gov.csv"
    gov.write_text("code\n9131AB\nC2\n")
    res = _run({"bank": _job(bank, "gov", tmp_path / "b.csv", row_number_column="row"),
                "gov": _job(gov, "bank", tmp_path / "g.csv")})
    assert res["bank"].intersection == 2
    rows = pacsv.read_csv(tmp_path / "b.csv").to_pylist()
    assert sorted(r["row"] for r in rows) == [1, 3]
    err = capfd.readouterr().err
    assert "1 rows with an empty key dropped (first rows [2])" in err
    assert "row 4 repeats row 3" in err


def test_unknown_and_missing_job_fields_are_named() -> None:
    with pytest.raises(UserError, match="'kyes'.*did you mean 'keys'"):
        job_from_options({"input": "a.csv", "kyes": ["x"], "peers": ["gov"]})
    with pytest.raises(UserError, match="missing field 'keys'"):
        job_from_options({"input": "a.csv", "peers": ["gov"]})


def test_bucketed_run_keeps_row_numbers_too(tmp_path: Path) -> None:
    bank = tmp_path / "bank.csv"
    pacsv.write_csv(pa.table({"code": [f"c{i}" for i in range(60)]}), bank)
    gov = tmp_path / "gov.csv"
    pacsv.write_csv(pa.table({"code": [f"c{i}" for i in range(50, 80)]}), gov)
    res = _run({"bank": _job(bank, "gov", tmp_path / "b.csv", row_number_column="row",
                             bucket_rows=16),
                "gov": _job(gov, "bank", tmp_path / "g.csv", bucket_rows=16)})
    assert res["bank"].intersection == 10
    rows = pacsv.read_csv(tmp_path / "b.csv").to_pylist()
    assert sorted(r["row"] for r in rows) == list(range(51, 61))
    assert all(r["code"] == f"c{r['row'] - 1}" for r in rows)
