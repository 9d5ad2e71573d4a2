"""AES-128 kernels: FIPS-197 vectors, agreement with OpenSSL, all paths equal."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meshmpc import _core
from meshmpc.crypto.aes import FIXED_KEY, Aes128, available_paths

PATHS = available_paths()
SIZES = [0, 1, 7, 8, 15, 16, 17, 33, 1000]


def openssl_ecb(key: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def blocks_of(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 16), dtype=np.uint8)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("key", "plain", "cipher"),
    [
        # FIPS-197 Appendix B and Appendix C.1.
        ("2b7e151628aed2a6abf7158809cf4f3c", "3243f6a8885a308d313198a2e0370734",
         "3925841d02dc09fbdc118597196a0b32"),
        ("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
         "69c4e0d86a7b0430d8cdb78070b4c55a"),
    ],
)
def test_fips197_vectors(path: int, key: str, plain: str, cipher: str) -> None:
    blocks = np.frombuffer(bytes.fromhex(plain) * 19, dtype=np.uint8).reshape(19, 16)
    out = Aes128(bytes.fromhex(key)).encrypt(blocks, path=path)
    assert all(row.tobytes().hex() == cipher for row in out)


def test_key_expansion_matches_fips197_a1() -> None:
    rk = _core.aes128_expand(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"))
    assert rk[160:].tobytes().hex() == "d014f9a8c9ee2589e13f0cc8b6630ca6"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", SIZES)
def test_ecb_matches_openssl(path: int, n: int) -> None:
    rng = np.random.default_rng(n)
    key = rng.bytes(16)
    blocks = blocks_of(rng, n)
    assert Aes128(key).encrypt(blocks, path=path).tobytes() == openssl_ecb(key, blocks.tobytes())


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", SIZES)
def test_counter_blocks_are_encrypted_counters(path: int, n: int) -> None:
    key = bytes(range(16))
    start = 2**64 - 2**20 if n else 0
    counters = b"".join((start + i).to_bytes(16, "little") for i in range(n))
    got = Aes128(key).counter_blocks(start, n, path=path)
    assert got.tobytes() == openssl_ecb(key, counters)


@pytest.mark.parametrize("n", SIZES)
def test_ecb_in_place_equals_out_of_place(n: int) -> None:
    blocks = blocks_of(np.random.default_rng(3), n)
    aes = Aes128(FIXED_KEY)
    expected = aes.encrypt(blocks)
    aes.encrypt_into(blocks, blocks)
    assert np.array_equal(blocks, expected)


def test_bad_key_and_buffers_raise() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Aes128(b"short")
    with pytest.raises(ValueError, match="blocks"):
        Aes128(FIXED_KEY).encrypt(np.zeros(17, dtype=np.uint8))
    small = np.zeros((1, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match="needs"):
        _core.aes128_ecb_into(_core.aes128_expand(FIXED_KEY), np.zeros((4, 16), np.uint8), small)
    readonly = np.zeros((4, 16), dtype=np.uint8)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.aes128_ctr_into(_core.aes128_expand(FIXED_KEY), 0, readonly)


def test_forced_paths_clamp_to_the_cpu() -> None:
    best = _core.best_path()
    assert _core.resolve_path(-1) == best
    assert _core.resolve_path(99) == best
    assert _core.resolve_path(0) == 0
    assert list(range(best + 1)) == PATHS
