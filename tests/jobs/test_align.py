"""``psi.align`` in one process: the common rows in one order, its checks and its report."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from meshmpc.jobs.errors import PeerStepError, StepFailedError
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.psi.components import _checked_positions
from meshmpc.psi.errors import PsiError

SETS = {"bank": range(0, 60), "gov": range(10, 80, 1), "fin": range(5, 50, 3)}


def _data(tmp_path: Path) -> dict[str, dict[str, Any]]:
    (tmp_path / "bank.csv").write_text(
        "code,x,label\n" + "".join(f"c{i:03d},{i},{i % 2}\n" for i in reversed(SETS["bank"])))
    (tmp_path / "gov.csv").write_text("gcode,y\n" + "".join(f"c{i:03d},{i * 10}\n"
                                                            for i in SETS["gov"]))
    with sqlite3.connect(tmp_path / "fin.db") as db:
        db.execute("create table firms (code text, z real)")
        db.executemany("insert into firms values (?, ?)",
                       [(f"c{i:03d}", i / 2) for i in SETS["fin"]])
    return {"bank": {"data": "bank.csv", "key": "code", "label": "label"},
            "gov": {"data": "gov.csv", "key": "gcode"},
            "fin": {"data": f"sqlite:///{tmp_path}/fin.db?table=firms", "key": "code"}}


def _run(tmp_path: Path, params: dict[str, Any],
         parties: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    raw = {"name": "al", "parties": parties or _data(tmp_path),
           "steps": [{"id": "align", "component": "psi.align", "params": params}]}
    return asyncio.run(run_job_in_memory(raw, tmp_path / "out", base_dir=tmp_path))


def _aligned(tmp_path: Path, party: str) -> Any:
    return pq.read_table(tmp_path / "out" / "al" / party / "align" / "aligned.parquet")


def test_three_parties_csv_and_sqlite_end_in_the_hub_order(tmp_path: Path) -> None:
    results = _run(tmp_path, {"protocol": "ecdh"})
    common = set(SETS["bank"]) & set(SETS["gov"]) & set(SETS["fin"])
    expected = [f"c{i:03d}" for i in reversed(SETS["bank"]) if i in common]  # bank file order
    assert _aligned(tmp_path, "bank").column("code").to_pylist() == expected
    assert _aligned(tmp_path, "gov").column("gcode").to_pylist() == expected
    fin = _aligned(tmp_path, "fin")
    assert fin.column("code").to_pylist() == expected
    assert fin.column("z").to_pylist() == [int(c[1:]) / 2 for c in expected]
    bank = results["bank"]["steps"]["align"]["report"]
    assert bank["hub"] == "bank" and bank["aligned_rows"] == len(expected)
    assert bank["pairwise_intersection"] == {"gov": 50, "fin": len(SETS["fin"])}
    gov = results["gov"]["steps"]["align"]["report"]
    assert gov["pairwise_intersection_with_hub"] == 50 and "pairwise" in gov["leakage"]


def test_another_hub_gives_the_same_set(tmp_path: Path) -> None:
    _run(tmp_path, {"protocol": "ecdh", "hub": "gov"})
    common = set(SETS["bank"]) & set(SETS["gov"]) & set(SETS["fin"])
    expected = [f"c{i:03d}" for i in SETS["gov"] if i in common]  # gov's file order
    assert _aligned(tmp_path, "bank").column("code").to_pylist() == expected


@pytest.mark.parametrize(("params", "words"), [
    ({"construction": "magic"}, "construction 'magic'"),
    ({"protocol": "rot13"}, "protocol 'rot13'"),
    ({"hub": "telco"}, "hub 'telco'"),
    ({"protcol": "kkrt"}, "unknown param 'protcol'"),
])
def test_bad_params_fail_the_step_at_every_party(tmp_path: Path, params: dict[str, Any],
                                                 words: str) -> None:
    results = _run(tmp_path, params)
    for party in ("bank", "gov", "fin"):
        assert isinstance(results[party], StepFailedError | PeerStepError)
    assert words in str(results["bank"]) and "'align'" in str(results["bank"])
    assert not (tmp_path / "out" / "al" / "bank" / "align").exists()


def test_a_party_without_a_key_is_told_which_field_to_add(tmp_path: Path) -> None:
    parties = _data(tmp_path)
    del parties["gov"]["key"]
    results = _run(tmp_path, {"protocol": "ecdh"}, parties)
    assert "party gov: psi.align needs parties.gov.key" in str(results["gov"])
    assert isinstance(results["bank"], PeerStepError) and results["bank"].culprit == "gov"


def test_row_positions_from_the_hub_are_checked() -> None:
    good = np.array([2, 0, 1], dtype=np.int64)
    assert _checked_positions(good, 3, "bank") is good
    for bad in (np.array([0, 3]), np.array([-1]), np.array([1, 1]), np.array([0.5]),
                [0, 1], np.zeros((1, 1), np.int64)):
        with pytest.raises(PsiError, match="party bank"):
            _checked_positions(np.asarray(bad) if isinstance(bad, np.ndarray) else bad, 3,
                               "bank")
