"""Cluster config and identity keys: every malformed input names the file and field."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from meshmpc.errors import ConfigError
from meshmpc.net.cli import _keygen
from meshmpc.net.config import load_config
from meshmpc.net.keys import IdentityKey
from meshmpc.net.local import make_local_cluster


def test_generated_cluster_round_trips(tmp_path: Path) -> None:
    config, identities = make_local_cluster(["bank", "gov", "fin"], tmp_path)
    loaded = load_config(tmp_path / "cluster.toml")
    assert loaded.party_ids == ["bank", "gov", "fin"]
    assert loaded.party("gov").public_key == identities["gov"].signing_key.verify_key
    assert loaded.party("bank").key_file == tmp_path / "bank.key"
    key = IdentityKey.load("bank", tmp_path / "bank.key")
    assert key.public_b64 == identities["bank"].public_b64


def test_private_key_file_is_created_owner_only(tmp_path: Path) -> None:
    import argparse

    _keygen(argparse.Namespace(party="telco", out=tmp_path))
    mode = stat.S_IMODE((tmp_path / "telco.key").stat().st_mode)
    assert mode == 0o600
    with pytest.raises(FileExistsError):
        _keygen(argparse.Namespace(party="telco", out=tmp_path))


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    IdentityKey.generate("bank").save(tmp_path)
    os.chmod(tmp_path / "bank.key", 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        IdentityKey.load("bank", tmp_path / "bank.key")


GOOD_KEY = IdentityKey.generate("x").public_b64


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


def _party(pid: str, address: str = "127.0.0.1:7001", key: str = GOOD_KEY) -> str:
    return f'[[parties]]\nid = "{pid}"\naddress = "{address}"\npublic_key = "{key}"\n'


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("this is = = not toml", "'-'"),
        (_party("a") + _party("b"), "'cluster'"),
        ('[cluster]\nid = "c"\n' + _party("a"), "'parties'"),
        ('[cluster]\nid = "c"\n' + _party("a") + _party("a", "127.0.0.1:7002"), "'parties.id'"),
        ('[cluster]\nid = "c"\n' + _party("a", "localhost") + _party("b"),
         "'parties[0].address'"),
        ('[cluster]\nid = "c"\n' + _party("a") + _party("b", key="bm90IGEga2V5"),
         "'parties[1].public_key'"),
        ('[cluster]\nid = "c"\nconnect_timeout_s = -1\n' + _party("a") + _party("b"),
         "'cluster.connect_timeout_s'"),
        ('[cluster]\n' + _party("a") + _party("b"), "'cluster.id'"),
    ],
    ids=["toml", "no-cluster", "one-party", "duplicate", "address", "key", "timeout", "no-id"],
)
def test_malformed_config_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.toml")
