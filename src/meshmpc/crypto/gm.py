"""National-cryptography (GM) primitives for the ``gm`` link suite: SM2, SM3, SM4-GCM.

Nothing here implements a primitive: SM3 comes from OpenSSL through
``cryptography``; SM4-GCM from libgcrypt (GnuPG's library, Debian's
``libgcrypt20``, whose SM4 uses AES-NI/AVX2 and runs about ten times faster
than OpenSSL's portable SM4 on x86-64) through a thin ctypes binding, or from
OpenSSL when libgcrypt >= 1.9 is missing (``MESHMPC_SM4=openssl`` forces
it); SM2 (signatures, GB/T 32918.2, and key exchange, GB/T
32918.3, on the recommended curve of GB/T 32918.5) from ``gmalglib``, a C
implementation, fed with randomness from the OS (``os.urandom``) rather than
its own generator. This module only adapts those libraries to the shapes the
link layer needs (a signing key, a pinned public key, an AEAD with
``encrypt_into``/``decrypt_into`` like ``AESGCM``).

These are algorithm implementations, not a certified cryptographic module: a
deployment that must pass a commercial-cryptography assessment (GM/T 0028,
GM/T 0054) replaces them with a certified one (see docs/conformance/jrt-0196.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from gmalglib.sm2 import SM2

# RFC 8998 section 3.2.1: TLS 1.3 SM2 signatures use this distinguishing identifier.
SM2_UID = b"1234567812345678"
SM2_PUBLIC_SIZE = 65  # uncompressed point 04 || x || y
SM2_SECRET_SIZE = 32
SM2_SIGNATURE_SIZE = 64  # r || s, 32 bytes each, big endian
SM4_KEY_SIZE = 16
GCM_TAG_SIZE = 16


def sm3(data: bytes) -> bytes:
    """SM3 digest (GB/T 32905) of ``data``."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def hkdf_sm3(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869) with SM3, as RFC 8998's TLS_SM4_GCM_SM3 key schedule uses."""
    return HKDF(algorithm=hashes.SM3(), length=length, salt=salt, info=info).derive(secret)


class Sm2PublicKey:
    """A pinned SM2 public key (uncompressed point), checked to lie on the curve."""

    def __init__(self, raw: bytes) -> None:
        raw = bytes(raw)
        if len(raw) != SM2_PUBLIC_SIZE or not SM2.is_pk_valid(raw):
            raise ValueError(f"not an SM2 public key (need a valid {SM2_PUBLIC_SIZE}-byte point)")
        self._raw = raw

    def __bytes__(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sm2PublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check an SM2 signature (``r || s``); raises ValueError when it is not valid."""
        if len(signature) != SM2_SIGNATURE_SIZE:
            raise ValueError("bad SM2 signature length")
        if not SM2(pk=self._raw, uid=SM2_UID, rnd_fn=os.urandom).verify(message, signature):
            raise ValueError("SM2 signature does not verify")


class Sm2SigningKey:
    """An SM2 private key: signs handshake transcripts and runs the key exchange."""

    def __init__(self, secret: bytes) -> None:
        secret = bytes(secret)
        if len(secret) != SM2_SECRET_SIZE or not SM2.is_sk_valid(secret):
            raise ValueError(f"not an SM2 private key (need {SM2_SECRET_SIZE} bytes in [1, n-2])")
        self._secret = secret
        self._sm2 = SM2(secret, uid=SM2_UID, rnd_fn=os.urandom)
        self.public_key = Sm2PublicKey(SM2.get_pk(secret))

    @classmethod
    def generate(cls) -> Sm2SigningKey:
        """A fresh key from the OS's randomness."""
        secret, _ = SM2(uid=SM2_UID, rnd_fn=os.urandom).generate_keypair()
        return cls(secret)

    def __bytes__(self) -> bytes:
        return self._secret

    def sign(self, message: bytes) -> bytes:
        """SM2 signature ``r || s`` over ``message`` (with Z computed from SM2_UID)."""
        return self._sm2.sign(message)

    def begin_key_exchange(self) -> tuple[bytes, bytes]:
        """Step A1-A3 / B1-B2 of GB/T 32918.3: (secret t, ephemeral point R to send)."""
        return self._sm2.begin_key_exchange()

    def end_key_exchange(self, t: bytes, peer_point: bytes, peer_key: Sm2PublicKey,
                         responder: bool, length: int) -> bytes:
        """The shared key of the SM2 key exchange with a peer whose static key is pinned."""
        if len(peer_point) != SM2_PUBLIC_SIZE or not SM2.is_pk_valid(peer_point):
            raise ValueError("peer's SM2 ephemeral point is not on the curve")
        return self._sm2.end_key_exchange(t, peer_point, bytes(peer_key), responder, length,
                                          SM2_UID)


def Sm4Gcm(key: bytes) -> GmAead:  # noqa: N802 (a factory, named like the classes it picks)
    """SM4-GCM (RFC 8998's TLS_SM4_GCM_SM3 record protection) with AESGCM's surface:
    libgcrypt's when available, else OpenSSL's (both give the same bytes)."""
    lib = _gcrypt() if os.environ.get("MESHMPC_SM4", "auto") != "openssl" else None
    return GcryptSm4Gcm(lib, key) if lib is not None else OpenSslSm4Gcm(key)


def sm4_backend() -> str:
    """Which library SM4-GCM runs on in this process: "libgcrypt" or "openssl"."""
    return "libgcrypt" if isinstance(Sm4Gcm(bytes(16)), GcryptSm4Gcm) else "openssl"


_GCRY_CIPHER_SM4 = 318
_GCRY_CIPHER_MODE_GCM = 9
_GCRYCTL_RESET = 4
_GCRYCTL_FINALIZE = 5


@functools.cache
def _gcrypt() -> ctypes.CDLL | None:
    """libgcrypt >= 1.9 (the first with SM4), or None."""
    name = ctypes.util.find_library("gcrypt") or "libgcrypt.so.20"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.gcry_check_version.restype = ctypes.c_char_p
    lib.gcry_check_version.argtypes = [ctypes.c_char_p]
    if lib.gcry_check_version(b"1.9.0") is None:
        return None
    handle_p = ctypes.POINTER(ctypes.c_void_p)
    for fn, args in {
        "gcry_cipher_open": [handle_p, ctypes.c_int, ctypes.c_int, ctypes.c_uint],
        "gcry_cipher_setkey": [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t],
        "gcry_cipher_setiv": [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t],
        "gcry_cipher_authenticate": [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t],
        "gcry_cipher_ctl": [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t],
        "gcry_cipher_encrypt": [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                ctypes.c_void_p, ctypes.c_size_t],
        "gcry_cipher_decrypt": [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                ctypes.c_void_p, ctypes.c_size_t],
        "gcry_cipher_gettag": [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t],
        "gcry_cipher_checktag": [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t],
        "gcry_cipher_close": [ctypes.c_void_p],
    }.items():
        getattr(lib, fn).argtypes = args
        getattr(lib, fn).restype = None if fn == "gcry_cipher_close" else ctypes.c_uint
    return lib


def _address(buffer: memoryview) -> int:
    return ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))


class GcryptSm4Gcm:
    """SM4-GCM on one libgcrypt cipher handle (one per direction; not thread-safe)."""

    def __init__(self, lib: ctypes.CDLL, key: bytes) -> None:
        if len(key) != SM4_KEY_SIZE:
            raise ValueError(f"SM4 keys are {SM4_KEY_SIZE} bytes")
        self._lib = lib
        self._handle = ctypes.c_void_p()
        self._check(lib.gcry_cipher_open(ctypes.byref(self._handle), _GCRY_CIPHER_SM4,
                                         _GCRY_CIPHER_MODE_GCM, 0), "open")
        self._check(lib.gcry_cipher_setkey(self._handle, bytes(key), len(key)), "setkey")

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self._lib.gcry_cipher_close(self._handle)

    @staticmethod
    def _check(code: int, step: str) -> None:
        if code:
            raise RuntimeError(f"libgcrypt SM4-GCM {step} failed with error {code}")

    def _start(self, nonce: bytes, aad: bytes) -> None:
        lib, h = self._lib, self._handle
        self._check(lib.gcry_cipher_ctl(h, _GCRYCTL_RESET, None, 0), "reset")
        self._check(lib.gcry_cipher_setiv(h, bytes(nonce), len(nonce)), "setiv")
        self._check(lib.gcry_cipher_authenticate(h, bytes(aad), len(aad)), "authenticate")
        self._check(lib.gcry_cipher_ctl(h, _GCRYCTL_FINALIZE, None, 0), "final")

    def encrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes:
        """Ciphertext followed by the tag."""
        out = bytearray(len(data) + GCM_TAG_SIZE)
        self.encrypt_into(nonce, data, aad, memoryview(out))
        return bytes(out)

    def encrypt_into(self, nonce: bytes, data: bytes | memoryview, aad: bytes,
                     out: memoryview) -> None:
        """Write ciphertext and tag into ``out`` (exactly ``len(data) + 16`` bytes)."""
        n = len(data)
        if len(out) != n + GCM_TAG_SIZE:
            raise ValueError("output buffer must be len(data) + 16 bytes")
        out[:n] = data  # then encrypt in place: no read-only pointer juggling
        self._start(nonce, aad)
        address = _address(out)
        if n:
            self._check(self._lib.gcry_cipher_encrypt(self._handle, address, n, None, 0),
                        "encrypt")
        self._check(self._lib.gcry_cipher_gettag(self._handle, address + n, GCM_TAG_SIZE),
                    "gettag")

    def decrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes:
        """Plaintext of ``data`` (ciphertext and tag); raises InvalidTag on tampering."""
        if len(data) < GCM_TAG_SIZE:
            raise InvalidTag()
        out = bytearray(len(data) - GCM_TAG_SIZE)
        self.decrypt_into(nonce, data, aad, memoryview(out))
        return bytes(out)

    def decrypt_into(self, nonce: bytes, data: bytes | memoryview, aad: bytes,
                     out: memoryview) -> None:
        """Authenticate and decrypt into ``out``; ``out`` holds garbage if InvalidTag."""
        view = memoryview(data)
        n = len(view) - GCM_TAG_SIZE
        if n < 0 or len(out) != n:
            raise InvalidTag()
        out[:] = view[:n]
        self._start(nonce, aad)
        if n:
            self._check(self._lib.gcry_cipher_decrypt(self._handle, _address(out), n, None, 0),
                        "decrypt")
        if self._lib.gcry_cipher_checktag(self._handle, bytes(view[n:]), GCM_TAG_SIZE):
            raise InvalidTag()


class OpenSslSm4Gcm:
    """SM4-GCM through OpenSSL (``cryptography``), with AESGCM's surface.

    Ciphertexts carry the 16-byte tag at the end, as AESGCM's do, so the
    record layer is the same for both suites.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != SM4_KEY_SIZE:
            raise ValueError(f"SM4 keys are {SM4_KEY_SIZE} bytes")
        self._algorithm = algorithms.SM4(bytes(key))

    def encrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes:
        """Ciphertext followed by the tag."""
        out = bytearray(len(data) + GCM_TAG_SIZE)
        self.encrypt_into(nonce, data, aad, memoryview(out))
        return bytes(out)

    def encrypt_into(self, nonce: bytes, data: bytes | memoryview, aad: bytes,
                     out: memoryview) -> None:
        """Write ciphertext and tag into ``out`` (exactly ``len(data) + 16`` bytes)."""
        n = len(data)
        if len(out) != n + GCM_TAG_SIZE:
            raise ValueError("output buffer must be len(data) + 16 bytes")
        enc = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        # update_into wants block_size - 1 spare bytes: the tag's room provides them.
        written = enc.update_into(data, out) if n else 0
        enc.finalize()
        assert written == n
        out[n:] = enc.tag

    def decrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes:
        """Plaintext of ``data`` (ciphertext and tag); raises InvalidTag on tampering."""
        if len(data) < GCM_TAG_SIZE:
            raise InvalidTag()
        out = bytearray(len(data) - GCM_TAG_SIZE)
        self.decrypt_into(nonce, data, aad, memoryview(out))
        return bytes(out)

    def decrypt_into(self, nonce: bytes, data: bytes | memoryview, aad: bytes,
                     out: memoryview) -> None:
        """Authenticate and decrypt into ``out``; ``out`` holds garbage if InvalidTag."""
        view = memoryview(data)
        n = len(view) - GCM_TAG_SIZE
        if n < 0 or len(out) != n:
            raise InvalidTag()
        dec = Cipher(self._algorithm, modes.GCM(nonce, bytes(view[n:]))).decryptor()
        dec.authenticate_additional_data(aad)
        head = max(0, n - GCM_TAG_SIZE)  # update_into needs 15 spare bytes in its output
        if head:
            dec.update_into(view[:head], out)
        out[head:n] = dec.update(view[head:n])
        dec.finalize()


GmAead = GcryptSm4Gcm | OpenSslSm4Gcm
