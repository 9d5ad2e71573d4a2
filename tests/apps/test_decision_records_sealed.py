"""The decision database at rest: applicant as a keyed hash, context and answers sealed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from meshmpc_credit.decision.records import DecisionRecords, decisions_table

from meshmpc.data.vault import Vault, VaultError

CODE = "91430104MFHH9RA756"
PHONE = "13812345678"


def _row(decision_id: str, applicant: str, decision: str, arm: str = "champion") -> dict:
    return {"id": decision_id, "applicant": applicant, "strategy": "preloan", "version": 1,
            "sha256": "0" * 64, "arm": arm,
            "context": {"fields": {"credit_code": applicant, "contact_phone": PHONE}},
            "answer": {"decision": decision, "rules": ["r1"]},
            "shadow": {"decision": decision} if arm == "challenger" else None}


def test_sealed_store_reads_back_and_leaves_nothing_in_clear(tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "keys" / "bank.vault")
    url = f"sqlite:///{tmp_path / 'credit.db'}"
    records = DecisionRecords(url, vault)
    records.add_many([_row("d1", CODE, "approve"), _row("d2", "91110105LUGQTYP05U", "decline"),
                      _row("d3", CODE, "decline", "challenger")])
    records.engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("credit.db*"))  # WAL file too
    assert len(raw) > 4096
    assert CODE.encode() not in raw and PHONE.encode() not in raw and b"approve" not in raw
    row = records.get("d1")
    assert row is not None and row["applicant"] == CODE
    assert row["context"]["fields"]["contact_phone"] == PHONE
    assert row["answer"]["decision"] == "approve" and row["shadow"] is None
    assert [r["id"] for r in records.by_applicant(CODE)] == ["d1", "d3"]
    assert records.challenger_comparison("preloan")["challenger_decisions"] == 1
    assert records.versions_of("preloan") == {1: 3}
    with pytest.raises(VaultError, match="vault key"):
        DecisionRecords(url).get("d1")
    with pytest.raises(VaultError, match="another vault key"):
        DecisionRecords(url, Vault.create(tmp_path / "other.vault")).get("d1")


def test_a_sealed_answer_moved_to_another_row_does_not_open(tmp_path: Path) -> None:
    records = DecisionRecords(f"sqlite:///{tmp_path / 'credit.db'}",
                              Vault.create(tmp_path / "bank.vault"))
    records.add_many([_row("d1", CODE, "decline"), _row("d2", CODE, "approve")])
    with records.engine.begin() as conn:
        approve = conn.execute(sa.select(decisions_table.c.answer)
                               .where(decisions_table.c.id == "d2")).scalar_one()
        conn.execute(decisions_table.update().where(decisions_table.c.id == "d1")
                     .values(answer=approve))
    with pytest.raises(VaultError, match="altered"):
        records.get("d1")
    assert records.get("d2")["answer"]["decision"] == "approve"  # type: ignore[index]
