"""The vault's two suites: AES-256-GCM by default, SM4-GCM for the national-cryptography suite."""

import pytest

from meshmpc.data.vault import MAGIC, MAGIC_SM4, Vault, VaultError

pytest.importorskip("gmalglib")


def test_a_gm_vault_seals_with_sm4_and_either_suite_opens_both(tmp_path):
    default = Vault.create(tmp_path / "bank.vault")
    gm = default.with_suite("gm")
    data = b"credit_code,score\n91110108MA01ABCD3X,612\n" * 1000
    sealed = gm.seal(data, "preloan/bank/card/scores.parquet")
    assert sealed[:4] == MAGIC_SM4 and data[:40] not in sealed
    assert default.open(sealed, "preloan/bank/card/scores.parquet") == data
    assert gm.open(default.seal(data, "x"), "x") == data
    assert default.seal(data, "x")[:4] == MAGIC
    with pytest.raises(VaultError, match="renamed"):
        gm.open(sealed, "preloan/bank/card/other.parquet")
    tampered = bytearray(sealed)
    tampered[-20] ^= 1
    with pytest.raises(VaultError, match="altered"):
        gm.open(bytes(tampered), "preloan/bank/card/scores.parquet")
    with pytest.raises(VaultError, match="cut short"):
        gm.open(sealed[:60], "x")
    with pytest.raises(VaultError, match="suite"):
        default.with_suite("sm9")
