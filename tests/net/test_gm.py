"""The gm link suite (issue #19): SM2/SM3/SM4 known answers, and the mesh over them.

Known answers come from the standards' published examples: SM3 "abc" (GB/T
32905-2016, example 1), SM4 (GB/T 32907-2016, example 1), SM2 signature on
the recommended curve (GM/T 0003.5-2012 / GB/T 32918 example: key, message
"message digest", ID 1234567812345678, nonce k, giving r and s).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmalglib.sm2 import SM2

from meshmpc.crypto.gm import (
    SM2_UID,
    GcryptSm4Gcm,
    OpenSslSm4Gcm,
    Sm2PublicKey,
    Sm2SigningKey,
    _gcrypt,
    hkdf_sm3,
    sm3,
    sm4_backend,
)
from meshmpc.errors import ConfigError
from meshmpc.net import framing
from meshmpc.net.config import load_config, parse_config
from meshmpc.net.errors import (
    AuthenticationError,
    ProtocolMismatchError,
    ReplayedFrameError,
    TamperedFrameError,
)
from meshmpc.net.keys import IdentityKey
from meshmpc.net.local import make_local_cluster
from meshmpc.net.secure import Handshake, SessionCipher, pack_hello, parse_hello
from meshmpc.net.tcp import TcpMesh

SM2_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_PUB = bytes.fromhex(
    "04" "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
SM2_K = bytes.fromhex("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21")
SM2_SIG = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)


def test_sm3_known_answers() -> None:
    assert sm3(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    assert sm3(b"abcd" * 16).hex() == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")


def test_sm4_block_known_answer() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (enc.update(key) + enc.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm2_public_key_and_signature_known_answers() -> None:
    key = Sm2SigningKey(SM2_D)
    assert bytes(key.public_key) == SM2_PUB
    Sm2PublicKey(SM2_PUB).verify(b"message digest", SM2_SIG)
    # gmalglib reads its random bytes as a little-endian integer: feed k reversed.
    fixed = SM2(SM2_D, uid=SM2_UID, rnd_fn=lambda n: SM2_K[::-1][:n])
    assert fixed.sign(b"message digest") == SM2_SIG
    with pytest.raises(ValueError):
        Sm2PublicKey(SM2_PUB).verify(b"message digesT", SM2_SIG)
    with pytest.raises(ValueError, match="not an SM2 public key"):
        Sm2PublicKey(b"\x04" + bytes(64))


def test_sm2_signatures_are_randomised_and_verify() -> None:
    key = Sm2SigningKey.generate()
    first, second = key.sign(b"transcript"), key.sign(b"transcript")
    assert first != second  # fresh nonce from the OS each time
    key.public_key.verify(b"transcript", first)
    key.public_key.verify(b"transcript", second)
    with pytest.raises(ValueError):
        Sm2SigningKey.generate().public_key.verify(b"transcript", first)


def test_sm2_key_exchange_agrees_only_with_the_right_keys() -> None:
    alice, bob, mallory = (Sm2SigningKey.generate() for _ in range(3))
    ta, ra = alice.begin_key_exchange()
    tb, rb = bob.begin_key_exchange()
    ka = alice.end_key_exchange(ta, rb, bob.public_key, responder=False, length=32)
    kb = bob.end_key_exchange(tb, ra, alice.public_key, responder=True, length=32)
    assert ka == kb and len(ka) == 32
    # Bob believing he talks to mallory derives another key: the static keys count.
    assert bob.end_key_exchange(tb, ra, mallory.public_key, responder=True, length=32) != ka
    with pytest.raises(ValueError, match="not on the curve"):
        alice.end_key_exchange(ta, b"\x04" + bytes(64), bob.public_key, False, 32)


def _backends(key: bytes) -> list[GcryptSm4Gcm | OpenSslSm4Gcm]:
    lib = _gcrypt()
    return [OpenSslSm4Gcm(key)] + ([GcryptSm4Gcm(lib, key)] if lib is not None else [])


def test_libgcrypt_is_used_where_present(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sm4_backend() == ("libgcrypt" if _gcrypt() is not None else "openssl")
    monkeypatch.setenv("MESHMPC_SM4", "openssl")
    assert sm4_backend() == "openssl"


@pytest.mark.parametrize("backend", [0, 1], ids=["openssl", "libgcrypt"])
def test_sm4_gcm_matches_openssl_and_detects_tampering(backend: int) -> None:
    key, nonce, aad = os.urandom(16), os.urandom(12), b"header"
    engines = _backends(key)
    if backend >= len(engines):
        pytest.skip("libgcrypt >= 1.9 not installed")
    aead = engines[backend]
    for size in [0, 1, 15, 16, 17, 1000, 1 << 16]:
        plain = os.urandom(size)
        sealed = aead.encrypt(nonce, plain, aad)
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        assert sealed == enc.update(plain) + enc.finalize() + enc.tag
        out = bytearray(size)
        aead.decrypt_into(nonce, sealed, aad, memoryview(out))
        assert bytes(out) == plain == aead.decrypt(nonce, sealed, aad)
        bad = bytearray(sealed)
        bad[len(bad) // 2] ^= 1
        with pytest.raises(InvalidTag):
            aead.decrypt(nonce, bytes(bad), aad)
        with pytest.raises(InvalidTag):
            aead.decrypt(nonce, sealed, b"other header")


def test_hkdf_sm3_is_deterministic_and_keyed() -> None:
    okm = hkdf_sm3(b"secret", b"salt", b"info", 32)
    assert okm == hkdf_sm3(b"secret", b"salt", b"info", 32) and len(okm) == 32
    assert okm != hkdf_sm3(b"secret", b"salt2", b"info", 32)


def test_gm_hello_layout() -> None:
    point = bytes(SM2_PUB)
    body = pack_hello("bank", bytes(range(32)), point, "gm")
    assert body[:6] == b"MMPC\x03\x01" and len(body) == 6 + 32 + 65 + 1 + 4
    hello = parse_hello(body)
    assert (hello.suite, hello.ephemeral_public, hello.party) == ("gm", point, "bank")


def _gm_handshake_pair() -> tuple[Handshake, Handshake, IdentityKey, IdentityKey]:
    a, b = IdentityKey.generate("a", "gm"), IdentityKey.generate("b", "gm")
    fp = os.urandom(32)
    ha, hb = Handshake(a, fp, dialer=True), Handshake(b, fp, dialer=False)
    ha.read_hello(hb.own_hello)
    hb.read_hello(ha.own_hello)
    return ha, hb, a, b


def _record(raw: bytes | bytearray) -> framing.Record:
    header = bytes(raw[: framing.HEADER_SIZE])
    counter, rtype = int.from_bytes(header[4:12], "little"), header[12]
    return framing.Record(header, counter, rtype, memoryview(bytes(raw[framing.HEADER_SIZE :])))


def _sessions() -> tuple[SessionCipher, SessionCipher, Handshake]:
    ha, hb, a, b = _gm_handshake_pair()
    hb.verify_peer(ha.auth_message(), a.public_key)
    ha.verify_peer(hb.auth_message(), b.public_key)
    return ha.session("b"), hb.session("a"), ha


def test_gm_handshake_derives_matching_fresh_sm4_keys() -> None:
    ca, cb, ha = _sessions()
    assert isinstance(ca._send, GcryptSm4Gcm | OpenSslSm4Gcm)
    assert cb.open(_record(ca.seal(framing.BATCH, b"hello"))) == b"hello"
    assert ca.open(_record(cb.seal(framing.BATCH, b"back"))) == b"back"
    other, _, ha2 = _sessions()
    assert ha2.own_hello[38:103] != ha.own_hello[38:103]  # a fresh ephemeral point
    assert bytes(other.seal(framing.BATCH, b"hello")) != bytes(
        _sessions()[0].seal(framing.BATCH, b"hello"))  # fresh keys: same counter, other bytes


def test_gm_handshake_refuses_a_wrong_key_and_a_default_peer() -> None:
    ha, hb, a, b = _gm_handshake_pair()
    with pytest.raises(AuthenticationError):
        hb.verify_peer(ha.auth_message(), b.public_key)  # a's signature, b's key pinned
    default = Handshake(IdentityKey.generate("c"), os.urandom(32), dialer=True)
    with pytest.raises(ProtocolMismatchError, match="link suite 'default', we use 'gm'"):
        hb.read_hello(default.own_hello)


def test_config_suite_must_match_every_key(tmp_path: Path) -> None:
    config, _ = make_local_cluster(["a", "b"], tmp_path, suite="gm")
    assert config.path is not None
    loaded = load_config(config.path)
    assert loaded.suite == "gm" and loaded.fingerprint == config.fingerprint
    assert dataclasses.replace(config, suite="default").fingerprint != config.fingerprint
    text = config.path.read_text().replace('suite = "gm"', 'suite = "default"')
    with pytest.raises(ConfigError, match="keygen --suite default"):
        parse_config(tomllib.loads(text))
    with pytest.raises(ConfigError, match="use one of"):
        parse_config(tomllib.loads(text.replace('suite = "default"', 'suite = "sm"')))


def test_gm_key_file_round_trip(tmp_path: Path) -> None:
    key = IdentityKey.generate("bank", "gm")
    private_path, public_path = key.save(tmp_path)
    assert private_path.read_text().startswith("sm2:")
    again = IdentityKey.load("bank", private_path)
    assert again.suite == "gm" and again.public_b64 == key.public_b64
    assert public_path.read_text().strip() == key.public_b64


def test_gm_mesh_carries_messages_and_arrays(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b", "c"], connect_timeout_s=10, suite="gm")
        meshes = await asyncio.gather(*(TcpMesh.connect(config, p, ids[p]) for p in "abc"))
        a, b, c = meshes
        arr = np.arange(3 << 18, dtype=np.int64)  # 6 MiB: several CHUNK records
        await a.send("b", "arr", arr)
        await c.send("b", "small", {"x": [1, 2, 3]})
        assert np.array_equal(await b.recv("a", "arr"), arr)
        assert await b.recv("c", "small") == {"x": [1, 2, 3]}
        await asyncio.gather(*(m.close() for m in meshes))

    run_checked(main())


def test_mixed_suites_are_refused_with_a_clear_message(run_checked) -> None:
    async def main() -> list[BaseException | TcpMesh]:
        gm, gm_ids = make_local_cluster(["a", "b"], connect_timeout_s=2, suite="gm")
        default_b = IdentityKey.generate("b")
        parties = [gm.parties[0], dataclasses.replace(gm.parties[1],
                                                      public_key=default_b.public_key)]
        other = dataclasses.replace(gm, parties=parties, suite="default")
        return await asyncio.gather(
            TcpMesh.connect(gm, "a", gm_ids["a"]), TcpMesh.connect(other, "b", default_b),
            return_exceptions=True,
        )

    results = run_checked(main(), timeout=20)
    for err in results:
        assert isinstance(err, BaseException), err
        assert "link suite" in str(err), str(err)


def test_gm_record_tampering_is_detected() -> None:
    sender, receiver, _ = _sessions()
    record = bytearray(sender.seal(framing.BATCH, b"payload" * 10))
    good = bytes(record)
    record[20] ^= 0x40
    with pytest.raises(TamperedFrameError):
        receiver.open(_record(record))
    assert receiver.open(_record(good)) == b"payload" * 10
    with pytest.raises(ReplayedFrameError):
        receiver.open(_record(good))


def test_gm_identity_has_no_ed25519_key_for_the_platform() -> None:
    gm = IdentityKey.generate("bank", "gm")
    with pytest.raises(ConfigError, match="SM2 \\(gm suite\\) key"):
        _ = gm.signing_key
    assert IdentityKey.generate("bank").signing_key is not None
    from meshmpc.net.keys import public_key_from_b64

    with pytest.raises(ValueError, match="expected an Ed25519 key"):
        public_key_from_b64(gm.public_b64)


def test_keygen_cli_makes_an_sm2_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "meshmpc.cli", "keygen", "--party", "bank", "--suite", "gm",
         "--out", str(tmp_path)], capture_output=True, text=True, check=True,
    ).stdout
    key = IdentityKey.load("bank", tmp_path / "bank.key")
    assert key.suite == "gm" and key.public_b64 in out
    assert (tmp_path / "bank.key").stat().st_mode & 0o077 == 0
