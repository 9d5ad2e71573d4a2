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


def _party(pid: str, address: str = "127.0.0.1:7001", key: str | None = None,
           extra: str = "") -> str:
    key = key or IdentityKey.generate(pid).public_b64
    return f'[[parties]]\nid = "{pid}"\naddress = "{address}"\npublic_key = "{key}"\n{extra}'


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
        ('[cluster]\nid = "c"\nkeepalive_s = 5.0\nkeepalive_timeout_s = 6.0\n' + _party("a")
         + _party("b"), "'cluster.keepalive_timeout_s'"),
    ],
    ids=["toml", "no-cluster", "one-party", "duplicate", "address", "key", "timeout", "no-id",
         "keepalive"],
)
def test_malformed_config_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.toml")


def test_two_parties_pinned_to_the_same_key_are_rejected(tmp_path: Path) -> None:
    path = _config(tmp_path, '[cluster]\nid = "c"\n' + _party("bank", key=GOOD_KEY)
                   + _party("gov", "127.0.0.1:7002") + _party("fin", "127.0.0.1:7003", GOOD_KEY))
    with pytest.raises(ConfigError, match="'bank' and 'fin' are pinned to the same public key"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "field", "suggestion"),
    [
        ('[cluster]\nid = "c"\nconect_timeout_s = 2\n', "cluster.conect_timeout_s",
         "connect_timeout_s"),
        ('[cluster]\nid = "c"\n[cluster.wan]\nlatency = 5\n', "cluster.wan.latency",
         "latency_ms"),
        ('[cluster]\nid = "c"\n[clusters]\n', "clusters", "cluster"),
    ],
    ids=["cluster", "wan", "top"],
)
def test_unknown_keys_are_errors_with_a_suggestion(
    tmp_path: Path, text: str, field: str, suggestion: str
) -> None:
    path = _config(tmp_path, text.replace("[clusters]\n", "") + _party("a")
                   + _party("b", "127.0.0.1:7002") + ("[clusters]\n" if "[clusters]" in text
                                                      else ""))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"'{field}'" in str(info.value) and f"did you mean '{suggestion}'" in str(info.value)


def test_unknown_party_key_is_named(tmp_path: Path) -> None:
    path = _config(tmp_path, '[cluster]\nid = "c"\n' + _party("a")
                   + _party("b", "127.0.0.1:7002", extra='keyfile = "b.key"\n'))
    with pytest.raises(ConfigError, match=r"'parties\[1\].keyfile'.*did you mean 'key_file'"):
        load_config(path)


def test_listen_is_separate_from_the_advertised_address(tmp_path: Path) -> None:
    path = _config(tmp_path, '[cluster]\nid = "c"\n'
                   + _party("a", "bank.example:7001", extra='listen = "0.0.0.0:7101"\n')
                   + _party("b", "127.0.0.1:7002"))
    config = load_config(path)
    a, b = config.party("a"), config.party("b")
    assert (a.host, a.port, a.bind) == ("bank.example", 7001, ("0.0.0.0", 7101))
    assert b.bind == ("127.0.0.1", 7002)
    (tmp_path / "round").mkdir()
    copy = _config(tmp_path / "round", config.to_toml())
    assert load_config(copy).party("a").bind == ("0.0.0.0", 7101)


def test_fingerprint_covers_shared_fields_only(tmp_path: Path) -> None:
    import dataclasses

    config, _ = make_local_cluster(["bank", "gov"])
    local_only = dataclasses.replace(
        config, connect_timeout_s=99.0,
        parties=[dataclasses.replace(config.parties[0], listen_host="0.0.0.0"),
                 config.parties[1]],
    )
    assert local_only.fingerprint == config.fingerprint
    moved = dataclasses.replace(
        config, parties=[dataclasses.replace(config.parties[0], port=1), config.parties[1]]
    )
    assert moved.fingerprint == config.fingerprint  # routes may differ between nodes
    rekeyed = dataclasses.replace(config, parties=[
        dataclasses.replace(config.parties[0], public_key=IdentityKey.generate("x")
                            .signing_key.verify_key), config.parties[1]])
    # keys are authenticated per link; during a rotation nodes pin different sets
    assert rekeyed.fingerprint == config.fingerprint
    reordered = dataclasses.replace(config, parties=config.parties[::-1])
    assert reordered.fingerprint != config.fingerprint
    assert dataclasses.replace(config, max_message_bytes=1 << 20).fingerprint != (
        config.fingerprint
    )
    assert len(config.fingerprint_hex) == 16


@pytest.mark.parametrize("bad_id", ["bad name", "a/../x", "x" * 65, "é"])
def test_party_ids_are_plain(tmp_path: Path, bad_id: str) -> None:
    path = _config(tmp_path, '[cluster]\nid = "c"\n' + _party(bad_id, key=GOOD_KEY)
                   + _party("b", "127.0.0.1:7002"))
    with pytest.raises(ConfigError, match=r"parties\[0\].id"):
        load_config(path)


def test_to_toml_escapes_strings(tmp_path: Path) -> None:
    import dataclasses

    config, _ = make_local_cluster(["bank", "gov"])
    odd = dataclasses.replace(config, cluster_id='sme "credit"\\\n\x7f 信用')
    path = _config(tmp_path, odd.to_toml())
    assert load_config(path).cluster_id == odd.cluster_id
