"""ECDH PSI's X25519 kernels: both paths against OpenSSL and each other, and the dispatch.

The libsodium path is checked against OpenSSL's X25519 (``cryptography``), an
independent implementation, on random and edge-case inputs. Intel's
multi-buffer path can only run on a CPU with AVX-512 IFMA: there it is checked
byte for byte against libsodium; elsewhere the tests check that it is not
chosen, says why, and that crypto_mb itself refuses.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from meshmpc.psi import group, x25519
from meshmpc.psi.group import HASH_PERSON, GroupPool, exponentiate, hash_and_exponentiate

P = 2**255 - 19
ORDER8 = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
"""A point of order 8 on Curve25519 (RFC 7748 small-order list)."""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


IFMA_CPU = {"avx512f", "avx512dq", "avx512bw", "avx512ifma", "avx512vbmi2"} <= _cpu_flags()
MB_WHEEL = not isinstance(x25519.mb_library_paths(), str)
needs_mb = pytest.mark.skipif(
    not (IFMA_CPU and MB_WHEEL),
    reason="the mb8-ifma path needs a CPU with AVX-512 IFMA/VBMI2 and the ipp-crypto and "
    "intel-cmplr-lib-rt wheels (pip install 'meshmpc[mb]'); "
    f"here: IFMA={IFMA_CPU}, wheels={MB_WHEEL}")


def _openssl(scalar: bytes, u: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(scalar).exchange(
        X25519PublicKey.from_public_bytes(u))


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def _edge_points() -> list[bytes]:
    """Inputs whose decoding matters: top bit set, u >= p (non-canonical), p - 2."""
    rng = np.random.default_rng(7)
    top = [bytes(b | (0x80 if i == 31 else 0) for i, b in enumerate(rng.bytes(32)))
           for _ in range(4)]
    return [*top, _le(P + 2), _le(P + 9), _le(2**255 - 1), _le(P - 2), _le(9),
            _le(P + 2 + 2**255)]


def _random_points(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(32 * n)


@pytest.fixture
def auto_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(x25519.PATH_ENV, raising=False)


def test_libsodium_matches_openssl_on_random_and_edge_inputs() -> None:
    points = _random_points(61, 1) + b"".join(_edge_points())
    for _ in range(3):
        scalar = os.urandom(32)
        got = exponentiate(scalar, points, path="libsodium")
        want = b"".join(_openssl(scalar, points[i:i + 32]) for i in range(0, len(points), 32))
        assert got == want


def test_hash_is_personalised_blake2b_then_x25519() -> None:
    digests = np.random.default_rng(2).bytes(16 * 37)
    scalar = os.urandom(32)
    u = b"".join(hashlib.blake2b(digests[i:i + 16], digest_size=32, person=HASH_PERSON).digest()
                 for i in range(0, len(digests), 16))
    assert hash_and_exponentiate(scalar, digests, path="libsodium") == \
        exponentiate(scalar, u, path="libsodium")
    assert hash_and_exponentiate(scalar, digests[:16], path="libsodium") == \
        _openssl(scalar, u[:32])


def test_exponents_commute() -> None:
    """X25519(a, X25519(b, H(d))) == X25519(b, X25519(a, H(d))): what PSI matches on."""
    digests = np.random.default_rng(3).bytes(16 * 50)
    a, b = os.urandom(32), os.urandom(32)
    ab = exponentiate(b, hash_and_exponentiate(a, digests))
    ba = exponentiate(a, hash_and_exponentiate(b, digests))
    assert ab == ba
    assert len(set(as_list(ab))) == 50


def as_list(data: bytes) -> list[bytes]:
    return [data[i:i + 32] for i in range(0, len(data), 32)]


@pytest.mark.parametrize("bad", [_le(0), _le(1), ORDER8, _le(P - 1), _le(P), _le(P + 1)])
def test_low_order_point_is_refused_with_its_index(bad: bytes) -> None:
    points = _random_points(5, 4) + bad + _random_points(3, 5)
    with pytest.raises(x25519.LowOrderPointError) as err:
        exponentiate(os.urandom(32), points, path="libsodium")
    assert err.value.index == 5
    assert "low-order" in str(err.value)


def test_forced_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(x25519.PATH_ENV, "libsodium")
    chosen = x25519.choose_path()
    assert (chosen.name, chosen.mb_reason) == ("libsodium", "MESHMPC_X25519=libsodium")
    points = _random_points(9, 6)
    scalar = os.urandom(32)
    assert exponentiate(scalar, points) == exponentiate(scalar, points, path="libsodium")


def test_unknown_forced_path_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(x25519.PATH_ENV, "avx9000")
    with pytest.raises(x25519.X25519PathError, match="auto, libsodium, mb8-ifma"):
        x25519.choose_path()


@pytest.mark.skipif(IFMA_CPU and MB_WHEEL, reason="this machine runs the mb8-ifma path")
def test_mb_path_skipped_here_with_a_reason(auto_path: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = x25519.choose_path()
    assert chosen.name == "libsodium"
    assert ("IFMA" in chosen.mb_reason) if MB_WHEEL else ("ipp-crypto" in chosen.mb_reason
                                                          or "intel-cmplr" in chosen.mb_reason)
    monkeypatch.setenv(x25519.PATH_ENV, "mb8-ifma")
    with pytest.raises(x25519.X25519PathError, match="cannot run here"):
        x25519.choose_path()
    with pytest.raises(x25519.X25519PathError):
        exponentiate(os.urandom(32), _random_points(8, 1), path="mb8-ifma")


@pytest.mark.skipif(IFMA_CPU or not MB_WHEEL,
                    reason="needs the ipp-crypto wheel on a CPU without AVX-512 IFMA")
def test_crypto_mb_itself_refuses_without_ifma() -> None:
    """Our CPU check skipped: the library is loaded and says it is not applicable."""
    reason = x25519.mb_status(check_cpu=False)
    assert "not applicable" in reason
    from meshmpc import _core

    assert not _core.x25519_mb_ready()


@needs_mb
@pytest.mark.parametrize("n", [1, 7, 8, 9, 1000])
def test_mb_matches_libsodium(n: int, auto_path: None) -> None:
    assert x25519.choose_path().name == "mb8-ifma"
    points = (_random_points(n, n) + b"".join(_edge_points()))[:32 * max(n, 10)]
    digests = np.random.default_rng(n + 1).bytes(16 * n)
    for _ in range(3):
        scalar = os.urandom(32)
        assert exponentiate(scalar, points, path="mb8-ifma") == \
            exponentiate(scalar, points, path="libsodium")
        assert hash_and_exponentiate(scalar, digests, path="mb8-ifma") == \
            hash_and_exponentiate(scalar, digests, path="libsodium")


@needs_mb
def test_mb_refuses_low_order_at_the_same_index() -> None:
    points = _random_points(11, 8) + ORDER8 + _random_points(4, 9)
    with pytest.raises(x25519.LowOrderPointError) as err:
        exponentiate(os.urandom(32), points, path="mb8-ifma")
    assert err.value.index == 11


def test_pool_threads_give_the_inline_result() -> None:
    """Chunks big enough for the worker threads give the same bytes as inline runs."""
    per_chunk = group.INLINE_BYTES // 16 + 40  # just too big to run inline
    digests = np.random.default_rng(10).bytes(16 * 3 * per_chunk)
    scalar = os.urandom(32)

    async def both() -> tuple[bytes, bytes]:
        with GroupPool(2) as threaded, GroupPool(0) as inline:
            step = 16 * per_chunk
            chunks = [digests[i:i + step] for i in range(0, len(digests), step)]
            a = await asyncio.gather(*(threaded.run("hash_exp", scalar, c) for c in chunks))
            b = [await inline.run("hash_exp", scalar, c) for c in chunks]
        return b"".join(a), b"".join(b)

    threaded, inline = asyncio.run(both())
    assert threaded == inline == _openssl_hashed(scalar, digests)


def _openssl_hashed(scalar: bytes, digests: bytes) -> bytes:
    return b"".join(_openssl(scalar, hashlib.blake2b(digests[i:i + 16], digest_size=32,
                                                     person=HASH_PERSON).digest())
                    for i in range(0, len(digests), 16))


def test_low_order_point_from_a_peer_names_the_peer_and_value() -> None:
    from meshmpc.psi.ecdh import _exp_checked
    from meshmpc.psi.errors import PsiError

    data = _random_points(3, 11) + ORDER8

    async def run() -> bytes:
        with GroupPool(0) as pool:
            return await _exp_checked(pool, os.urandom(32), data, "gov", 8192)

    with pytest.raises(PsiError, match=r"value 8195 received from party gov .*low-order"):
        asyncio.run(run())
