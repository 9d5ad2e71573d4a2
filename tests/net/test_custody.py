"""Key custody: identity keys inside a PKCS#11 token (SoftHSM2), rotation with an overlap
in which both keys are accepted, and revocation (config list and a re-read file)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from meshmpc.errors import ConfigError
from meshmpc.net.config import ClusterConfig, load_config
from meshmpc.net.context import Context
from meshmpc.net.custody import Pkcs11SigningKey, Pkcs11Uri
from meshmpc.net.errors import AuthenticationError, NetworkError
from meshmpc.net.keys import IdentityKey, public_key_to_b64
from meshmpc.net.local import make_local_cluster
from meshmpc.net.secure import Handshake
from meshmpc.net.tcp import TcpMesh

PIN = "4321"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh SoftHSM2 token labelled ``meshmpc`` and a PIN file (mode 0600)."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path("/usr/lib/softhsm/libsofthsm2.so").exists():
        pytest.skip("SoftHSM2 not installed: run `make test` as root, or "
                    "`apt-get install softhsm2`")
    pytest.importorskip("pkcs11", reason="python-pkcs11 missing: pip install 'meshmpc[pkcs11]'")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the module when the token is opened
    subprocess.run([util, "--init-token", "--free", "--label", "meshmpc", "--pin", PIN,
                    "--so-pin", "87654321"], check=True, capture_output=True)
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return {"root": root, "pin_file": pin_file}


def _uri(token: dict[str, Any], label: str) -> Pkcs11Uri:
    return Pkcs11Uri.parse(f"pkcs11:token=meshmpc;object={label}"
                           f"?pin-source=file:{token['pin_file']}")


def test_a_token_key_signs_inside_the_token_and_saves_only_its_uri(
        token: dict[str, Any], tmp_path: Path) -> None:
    identity = IdentityKey.in_new_token_key("bank", _uri(token, "bank-identity"))
    assert identity.in_token and identity.suite == "default"
    private_path, public_path = identity.save(tmp_path)
    text = private_path.read_text()
    assert text.startswith("pkcs11:token=meshmpc;object=bank-identity")
    assert oct(private_path.stat().st_mode & 0o777) == "0o600"
    assert public_path.read_text().strip() == identity.public_b64
    loaded = IdentityKey.load("bank", private_path)
    assert isinstance(loaded.key, Pkcs11SigningKey)
    signature = loaded.sign(b"message")
    identity.public_key.verify(b"message", signature)  # libsodium checks the token's EdDSA
    with pytest.raises(TypeError, match="cannot be exported"):
        bytes(loaded.key)
    with pytest.raises(ConfigError, match="already holds an object labelled 'bank-identity'"):
        IdentityKey.in_new_token_key("bank", _uri(token, "bank-identity"))


def test_token_uris_and_pins_are_checked(token: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PIN inside the URI is refused"):
        Pkcs11Uri.parse("pkcs11:token=meshmpc;object=x?pin-value=1234")
    with pytest.raises(ConfigError, match="needs object=LABEL"):
        Pkcs11Uri.parse("pkcs11:token=meshmpc")
    with pytest.raises(ConfigError, match="unknown or malformed URI attribute 'tokn=x'"):
        Pkcs11Uri.parse("pkcs11:tokn=x;object=y")
    loose = tmp_path / "pin"
    loose.write_text(PIN)
    loose.chmod(0o644)
    uri = Pkcs11Uri.parse(f"pkcs11:token=meshmpc;object=x?pin-source=file:{loose}")
    with pytest.raises(ConfigError, match="the token PIN is readable by others"):
        uri.pin("test")
    wrong = tmp_path / "wrong"
    wrong.write_text("0000")
    wrong.chmod(0o600)
    bad = Pkcs11Uri.parse(f"pkcs11:token=meshmpc;object=bank-identity?pin-source=file:{wrong}")
    with pytest.raises(ConfigError, match="token 'meshmpc'"):
        Pkcs11SigningKey(bad)
    with pytest.raises(ConfigError, match="key 'nosuch'"):
        Pkcs11SigningKey(_uri(token, "nosuch"))


def test_a_mesh_authenticates_a_party_whose_key_lives_in_a_token(
        token: dict[str, Any], run_checked: Any) -> None:
    config, identities = make_local_cluster(["bank", "gov"], connect_timeout_s=10)
    bank = IdentityKey.in_new_token_key("bank", _uri(token, f"bank-{os.urandom(4).hex()}"))
    config = _pin(config, "bank", bank)
    identities["bank"] = bank

    async def main() -> None:
        meshes = await asyncio.gather(*(TcpMesh.connect(config, p, identities[p])
                                        for p in ("bank", "gov")))
        ctx = {m.party: Context(m) for m in meshes}
        await ctx["bank"].send("gov", "hi", b"from the token")
        assert await ctx["gov"].recv("bank", "hi") == b"from the token"
        await asyncio.gather(*(m.close() for m in meshes))

    run_checked(main())


def _pin(config: ClusterConfig, party: str, identity: IdentityKey, **changes: Any
         ) -> ClusterConfig:
    parties = [dataclasses.replace(p, public_key=identity.public_key, **changes)
               if p.id == party else p for p in config.parties]
    return dataclasses.replace(config, parties=parties)


def _handshake_with(config: ClusterConfig, peer: str, peer_key: IdentityKey) -> None:
    """``peer`` (signing with ``peer_key``) authenticates to a node using ``config``."""
    ours = Handshake(IdentityKey.generate("gov"), config.fingerprint, dialer=False)
    theirs = Handshake(peer_key, config.fingerprint, dialer=True)
    ours.read_hello(theirs.own_hello)
    theirs.read_hello(ours.own_hello)
    ours.verify_peer(theirs.auth_message(), config.accepted_keys(peer))


def test_rotation_accepts_both_keys_until_the_overlap_ends() -> None:
    config, _ = make_local_cluster(["bank", "gov"])
    old, new = IdentityKey.generate("bank"), IdentityKey.generate("bank")
    rotating = _pin(config, "bank", new, previous_keys=(old.public_key,),
                    previous_keys_until=time.time() + 3600)
    _handshake_with(rotating, "bank", new)
    _handshake_with(rotating, "bank", old)  # a node that has not switched yet
    ended = _pin(config, "bank", new, previous_keys=(old.public_key,),
                 previous_keys_until=time.time() - 1)
    _handshake_with(ended, "bank", new)
    with pytest.raises(AuthenticationError, match="does not match"):
        _handshake_with(ended, "bank", old)
    assert rotating.fingerprint == config.fingerprint  # nodes may rotate one at a time


def test_rotation_round_trips_through_toml(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["bank", "gov"])
    old = IdentityKey.generate("bank")
    until = float(int(time.time()) + 86400)
    rotating = _pin(config, "bank", IdentityKey.generate("bank"),
                    previous_keys=(old.public_key,), previous_keys_until=until)
    path = tmp_path / "cluster.toml"
    path.write_text(rotating.to_toml())
    loaded = load_config(path).party("bank")
    assert loaded.previous_keys == (old.public_key,) and loaded.previous_keys_until == until
    text = path.read_text().replace("previous_keys_until", "# no end")
    path.write_text(text)
    with pytest.raises(ConfigError, match="a rotation's overlap must end"):
        load_config(path)


def test_a_revoked_key_is_refused_and_a_revocation_file_is_reread(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["bank", "gov"])
    old, new = IdentityKey.generate("bank"), IdentityKey.generate("bank")
    revocations = tmp_path / "revoked.keys"
    revocations.write_text("# keys no node accepts any more\n")
    rotating = _pin(config, "bank", new, previous_keys=(old.public_key,),
                    previous_keys_until=time.time() + 3600)
    rotating = dataclasses.replace(rotating, revocation_file=revocations)
    _handshake_with(rotating, "bank", old)
    revocations.write_text(f"# compromised\n{old.public_b64}\n")
    os.utime(revocations, (time.time() + 5, time.time() + 5))  # a visible change of mtime
    deadline = time.monotonic() + 3
    while True:  # the file is re-read at most once a second
        try:
            _handshake_with(rotating, "bank", old)
        except AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revocation was not picked up within 3 s"
        time.sleep(0.2)
    _handshake_with(rotating, "bank", new)
    listed = dataclasses.replace(rotating, revocation_file=None,
                                 revoked_keys=frozenset({bytes(new.public_key)}))
    with pytest.raises(ConfigError, match="every key of party 'bank' is revoked"):
        listed.accepted_keys("bank", now=time.time() + 7200)
    path = tmp_path / "cluster.toml"
    path.write_text(dataclasses.replace(config, revoked_keys=frozenset(
        {bytes(config.party("bank").public_key)})).to_toml())
    with pytest.raises(ConfigError, match="pinned to a revoked key"):
        load_config(path)
    assert public_key_to_b64(new.public_key) == new.public_b64


def test_keygen_creates_the_key_in_the_token(token: dict[str, Any], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from meshmpc.cli import main

    uri = f"pkcs11:token=meshmpc;object=keygen-{os.urandom(4).hex()}" \
          f"?pin-source=file:{token['pin_file']}"
    assert main(["keygen", "--party", "bank", "--out", str(tmp_path), "--pkcs11", uri,
                 "--address", "127.0.0.1:7001"]) == 0
    out = capsys.readouterr().out
    public = (tmp_path / "bank.pub").read_text().strip()
    assert f'public_key = "{public}"' in out and "its token URI" in out
    assert (tmp_path / "bank.key").read_text().strip() == str(Pkcs11Uri.parse(uri))
    assert IdentityKey.load("bank", tmp_path / "bank.key").public_b64 == public


def test_a_secret_wrapped_by_a_token_key_opens_only_there_and_unaltered(
        token: dict[str, Any]) -> None:
    from meshmpc.net.custody import create_wrapping_key, unwrap_secret, wrap_secret

    uri = _uri(token, f"kek-{os.urandom(4).hex()}")
    create_wrapping_key(uri)
    secret = os.urandom(32)
    blob = wrap_secret(uri, secret, b"vault:bank")
    assert secret not in blob and len(blob) == 12 + 32 + 16
    assert unwrap_secret(uri, blob, b"vault:bank") == secret
    assert wrap_secret(uri, secret, b"vault:bank") != blob  # a fresh nonce each time
    with pytest.raises(ConfigError, match="cannot decrypt"):
        unwrap_secret(uri, blob, b"vault:gov")
    altered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ConfigError, match="cannot decrypt"):
        unwrap_secret(uri, altered, b"vault:bank")


def test_a_node_with_a_token_keeps_its_vault_key_wrapped_there(
        token: dict[str, Any], tmp_path: Path) -> None:
    from meshmpc.data.vault import TOKEN_WRAPPED, Vault
    from meshmpc.platform.node import Node, init_node

    uri = f"pkcs11:token=meshmpc;object=node-{os.urandom(4).hex()}" \
          f"?pin-source=file:{token['pin_file']}"
    config, _ = init_node(tmp_path / "bank", "bank", "root", "correct horse battery",
                          pkcs11=uri, password_memory_mb=8)
    content = config.vault_path.read_bytes()
    assert content.startswith(TOKEN_WRAPPED) and b"-vault" in content
    node = Node(config)
    assert node.identity.in_token
    sealed = node.vault.seal(b"artefact", "job/bank/step/x")
    assert Vault.load(config.vault_path).open(sealed, "job/bank/step/x") == b"artefact"
    tampered = config.vault_path.read_bytes().replace(b"\n", b"A\n", 1)
    config.vault_path.write_bytes(tampered)
    with pytest.raises(ConfigError):
        Vault.load(config.vault_path)


def test_a_key_revoked_while_its_link_is_up_ends_the_link(run_checked, tmp_path: Path) -> None:
    config, ids = make_local_cluster(["bank", "gov"], connect_timeout_s=5)
    revocations = tmp_path / "revoked.keys"
    revocations.write_text("")
    config = dataclasses.replace(config, revocation_file=revocations, keepalive_s=0.1,
                                 keepalive_timeout_s=0.5)

    async def main() -> tuple[BaseException, BaseException, float]:
        bank, gov = await asyncio.gather(TcpMesh.connect(config, "bank", ids["bank"]),
                                         TcpMesh.connect(config, "gov", ids["gov"]))
        await bank.send("gov", "m", 1)
        assert await gov.recv("bank", "m") == 1
        revocations.write_text(f"{ids['bank'].public_b64}\n")
        os.utime(revocations, (time.time() + 5, time.time() + 5))
        started = time.monotonic()
        with pytest.raises(AuthenticationError) as at_gov:
            await asyncio.wait_for(gov.recv("bank", "m"), 5)
        took = time.monotonic() - started
        with pytest.raises(NetworkError) as at_bank:
            await asyncio.wait_for(bank.recv("gov", "m"), 5)
        await asyncio.gather(bank.close(), gov.close())
        return at_gov.value, at_bank.value, took

    at_gov, at_bank, took = run_checked(main())
    assert at_gov.peer == "bank" and "revoked while the link was up" in str(at_gov)
    assert "revoked" in str(at_bank)  # told by gov's ABORT
    assert took < 2.5  # the file is re-read at most once a second, checked every tick
