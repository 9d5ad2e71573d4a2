"""Identifier masking and encryption at rest."""

import logging

import pyarrow as pa
import pytest

from meshmpc.data.protect import (
    check_classification,
    install_log_masking,
    mask_credit_code,
    mask_name,
    mask_phone,
    mask_text,
    needs_masking,
)
from meshmpc.data.vault import Vault, VaultError, is_sealed


def test_masks_follow_the_bank_conventions():
    assert mask_credit_code("911101081234561234") == "91110108****1234"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张**"
    text = "applicant 91110108MA01ABCD3X phone 13812345678 id 110101199001011234 ok"
    masked = mask_text(text)
    assert "MA01ABCD" not in masked and "91110108****CD3X" in masked
    assert "138****5678" in masked and "110101********1234" in masked
    assert mask_text("amount 12345678901234567890") == "amount 12345678901234567890"


def test_classification_values():
    assert needs_masking("C2") and needs_masking("L4") and not needs_masking("C1")
    with pytest.raises(ValueError, match="C4"):
        check_classification("C4", "phone")


def test_log_records_are_masked(caplog):
    install_log_masking()
    logger = logging.getLogger("meshmpc.test")
    with caplog.at_level(logging.INFO, logger="meshmpc"):
        logger.info("refused %s for %s", "13812345678", "911101081234561234")
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text
    assert "91110108****1234" in caplog.text


def test_vault_round_trip_and_binding(tmp_path):
    vault = Vault.create(tmp_path / "keys" / "bank.vault")
    assert (tmp_path / "keys" / "bank.vault").stat().st_mode & 0o077 == 0
    table = pa.table({"credit_code": ["911101081234561234"], "score": [612.5]})
    path = tmp_path / "scores.parquet"
    vault.write_table(path, table)
    assert is_sealed(path) and b"911101081234561234" not in path.read_bytes()
    assert Vault.load(tmp_path / "keys" / "bank.vault").read_table(path).equals(table)
    moved = tmp_path / "other.parquet"
    moved.write_bytes(path.read_bytes())
    with pytest.raises(VaultError, match="renamed"):
        vault.read_table(moved)
    tampered = bytearray(path.read_bytes())
    tampered[-20] ^= 1
    with pytest.raises(VaultError, match="altered"):
        vault.open(bytes(tampered), "scores.parquet")
    other = Vault.create(tmp_path / "keys" / "gov.vault")
    with pytest.raises(VaultError, match="another vault key"):
        other.read_table(path)
    resealed = vault.reseal(path.read_bytes(), "scores.parquet", other)
    assert other.open(resealed, "scores.parquet") == vault.read(path)
