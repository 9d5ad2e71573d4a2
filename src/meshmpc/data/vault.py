"""Encryption at rest for what jobs leave on disk: envelope AES-256-GCM under a node-held key.

A node keeps one master key (32 random bytes from the OS, file mode 0600,
``keys/<party>.vault``; a PKCS#11 token can hold it instead where configured).
Every file is sealed with a fresh data key, itself wrapped by the master key,
and the file's logical name is bound in as associated data, so a sealed file
moved to another name or another node does not open::

    "MMV1" | key id (8) | wrap nonce (12) | wrapped data key + tag (48) | nonce (12)
           | ciphertext + tag

AES-256-GCM comes from OpenSSL through ``cryptography`` (never our own
cipher). A vault of the national-cryptography suite (``suite="gm"``, the
cluster's ``suite = "gm"``) seals with SM4-GCM instead (libgcrypt or OpenSSL,
:func:`meshmpc.crypto.gm.Sm4Gcm`): magic ``"MMS1"``, a 16-byte data key
(wrapped: 32 bytes), the wrapping key derived from the master key with
HKDF-SM3. Either vault opens both kinds, picked by the magic. Rotating the master key
re-seals each file under the new key (:meth:`Vault.reseal`).

Scratch files and caches too large to seal in one piece are sealed chunk by
chunk (:meth:`Vault.sealed_scratch`, :mod:`meshmpc.data.sealedfile`; magics
``MMC1`` and ``MSC1``); :meth:`Vault.ephemeral` gives a vault whose key never
leaves the process, for scratch only that process reads back.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from meshmpc.errors import ConfigError, MeshMPCError

if TYPE_CHECKING:
    from meshmpc.data.sealedfile import SealedScratch

MAGIC = b"MMV1"
MAGIC_SM4 = b"MMS1"
MAGICS = (MAGIC, MAGIC_SM4)
HEADER = len(MAGIC) + 8 + 12 + 48 + 12
SUITES = ("default", "gm")
VAULT_DIR_ENV = "MESHMPC_VAULT_DIR"
MAX_SEALED = (1 << 31) - 1 - HEADER
"""OpenSSL's one-shot AES-GCM takes at most 2 GiB per call; a bigger artefact is refused."""


TOKEN_WRAPPED = b"pkcs11-wrapped:"
"""A vault key file holding the master key wrapped by an AES key inside a PKCS#11 token:
``pkcs11-wrapped:<URI>`` on the first line, the base64 wrapped key on the second."""


def _wrap_in_token(uri_text: str, key: bytes, path: Path) -> bytes:
    import base64

    from meshmpc.net.custody import Pkcs11Uri, create_wrapping_key, wrap_secret

    uri = Pkcs11Uri.parse(uri_text, path)
    try:
        create_wrapping_key(uri, path)
    except ConfigError as exc:
        if "already holds" not in exc.problem:  # an existing wrapping key is reused
            raise
    blob = wrap_secret(uri, key, b"meshmpc-vault-v1|" + str(uri).encode(), path)
    return TOKEN_WRAPPED + str(uri).encode() + b"\n" + base64.b64encode(blob) + b"\n"


def _unwrap_from_token(content: bytes, path: Path) -> bytes:
    import base64
    import binascii

    from meshmpc.net.custody import Pkcs11Uri, unwrap_secret

    try:
        first, second = content[len(TOKEN_WRAPPED):].decode().strip().split("\n")
        uri = Pkcs11Uri.parse(first, path)
        blob = base64.b64decode(second, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(path, "vault_key", f"not a token-wrapped vault key: {exc}") from exc
    return unwrap_secret(uri, blob, b"meshmpc-vault-v1|" + str(uri).encode(), path)


def default_vault_dir() -> Path:
    """Where local runs keep each party's vault key: ``$MESHMPC_VAULT_DIR`` or ~/.config.

    Kept outside the output folder on purpose: a copy of ``out/`` alone opens nothing.
    """
    env = os.environ.get(VAULT_DIR_ENV)
    return Path(env) if env else Path.home() / ".config" / "meshmpc" / "vault"


def vault_key_beside(identity_key: Path) -> Path:
    """A node's vault key lives beside its identity key: keys/bank.key -> keys/bank.vault."""
    return identity_key.with_suffix(".vault")


class Aead(Protocol):
    """What the vault needs of an AEAD (AESGCM's surface; SM4-GCM has the same)."""

    def encrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes: ...


class VaultError(MeshMPCError, ValueError):
    """A sealed file does not open: wrong key, wrong name, or it was altered."""


class Vault:
    """Seal and open files under this node's master key."""

    def __init__(self, master_key: bytes, suite: str = "default") -> None:
        if len(master_key) != 32:
            raise VaultError("a vault master key is 32 bytes")
        if suite not in SUITES:
            raise VaultError(f"vault suite {suite!r} is not one of {', '.join(SUITES)}")
        self.suite = suite
        self._raw = master_key
        self._master = AESGCM(master_key)
        self._lookup_key = HKDF(hashes.SHA256(), 32, salt=None,
                                info=b"meshmpc-vault-lookup-v1").derive(master_key)
        self.key_id = hashlib.sha256(b"meshmpc-vault-key-id|" + master_key).digest()[:8]
        self._sm4_wrap: Aead | None = None

    @classmethod
    def ephemeral(cls, suite: str = "default") -> Vault:
        """A vault whose key lives only in this process (OS randomness, never written).

        For scratch files read back by the process that wrote them: once the
        process ends, what it left on disk opens for nobody.
        """
        return cls(os.urandom(32), suite)

    def sealed_scratch(self, path: Path, name: str | None = None) -> SealedScratch:
        """A scratch file at ``path`` sealed in chunks (streams: bounded memory).

        ``writer()`` and ``reader()`` give file objects (pyarrow and numpy write
        into and read from them); see :mod:`meshmpc.data.sealedfile`.
        """
        from meshmpc.data.sealedfile import SealedScratch

        return SealedScratch(path, self, name)

    def new_data_key(self, aad: bytes) -> tuple[bytes, Aead, bytes]:
        """A fresh data key for one file: (kind magic, its AEAD, wrap nonce + wrapped key).

        The kind is this vault's suite (``MAGIC`` AES-256-GCM, ``MAGIC_SM4``
        SM4-GCM); ``aad`` is bound into the wrapping.
        """
        magic = MAGIC_SM4 if self.suite == "gm" else MAGIC
        wrap, cipher, key_size = self._ciphers(magic)
        data_key, wrap_nonce = os.urandom(key_size), os.urandom(12)
        return magic, cipher(data_key), wrap_nonce + wrap.encrypt(wrap_nonce, data_key, aad)

    def open_data_key(self, magic: bytes, blob: bytes, aad: bytes, name: str) -> Aead:
        """The data key :meth:`new_data_key` wrapped into ``blob``, as its AEAD."""
        wrap, cipher, key_size = self._ciphers(magic)
        try:
            return cipher(wrap.decrypt(blob[:12], blob[12:], aad))
        except InvalidTag as exc:
            raise VaultError(f"{name}: altered, renamed or sealed for another name") from exc

    @staticmethod
    def wrapped_key_size(magic: bytes) -> int:
        """Bytes of wrap nonce + wrapped data key for a file kind."""
        return 12 + (32 if magic == MAGIC else 16) + 16

    def with_suite(self, suite: str) -> Vault:
        """The same key sealing with ``suite``'s cipher (``gm``: SM4-GCM)."""
        return self if suite == self.suite else Vault(self._raw, suite)

    def _ciphers(self, magic: bytes) -> tuple[Aead, Callable[[bytes], Aead], int]:
        """(key-wrapping AEAD, data-key AEAD factory, data key length) for a file kind."""
        if magic == MAGIC:
            return self._master, AESGCM, 32
        from meshmpc.crypto.gm import SM4_KEY_SIZE, Sm4Gcm

        if self._sm4_wrap is None:
            key = HKDF(hashes.SM3(), SM4_KEY_SIZE, salt=None,
                       info=b"meshmpc-vault-sm4-wrap-v1").derive(self._raw)
            self._sm4_wrap = Sm4Gcm(key)
        return self._sm4_wrap, Sm4Gcm, SM4_KEY_SIZE

    @classmethod
    def create(cls, path: Path, token_uri: str | None = None) -> Vault:
        """Make a new master key file (mode 0600); refuses to overwrite one. With
        ``token_uri`` (a PKCS#11 URI naming an AES key, made there when missing) the file
        holds the master key wrapped inside the token, never the key itself."""
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        content = key if token_uri is None else _wrap_in_token(token_uri, key, path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        try:
            os.link(tmp, path)  # atomic, and never over an existing key (FileExistsError)
        finally:
            tmp.unlink()
        return cls(key)

    @classmethod
    def open_or_create(cls, path: Path) -> Vault:
        """The key at ``path``, made first when there is none (a party's first sealed run)."""
        if not path.exists():
            try:
                return cls.create(path)
            except FileExistsError:  # another party process made it meanwhile
                pass
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> Vault:
        try:
            mode = path.stat().st_mode
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(path, "vault_key", f"cannot read the vault key: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(path, "vault_key", "vault key readable by others; chmod 600 it")
        if key.startswith(TOKEN_WRAPPED):
            return cls(_unwrap_from_token(key, path))
        return cls(key)

    def seal(self, data: bytes, name: str) -> bytes:
        """Encrypt ``data`` for the logical ``name`` (bound as associated data)."""
        if len(data) > MAX_SEALED:
            raise VaultError(f"{name}: {len(data):,} bytes is more than one sealed file holds "
                             f"({MAX_SEALED:,}); split the artefact")
        magic = MAGIC_SM4 if self.suite == "gm" else MAGIC
        wrap, cipher, key_size = self._ciphers(magic)
        data_key, wrap_nonce, nonce = os.urandom(key_size), os.urandom(12), os.urandom(12)
        aad = magic + self.key_id + name.encode()
        wrapped = wrap.encrypt(wrap_nonce, data_key, aad)
        body = cipher(data_key).encrypt(nonce, data, aad)
        return magic + self.key_id + wrap_nonce + wrapped + nonce + body

    def open(self, sealed: bytes, name: str) -> bytes:
        """Decrypt what :meth:`seal` made for ``name``; VaultError if anything differs."""
        magic = sealed[:4]
        if magic not in MAGICS:
            raise VaultError(f"{name}: not a sealed meshmpc file")
        key_id = sealed[4:12]
        if key_id != self.key_id:
            raise VaultError(f"{name}: sealed under another vault key ({key_id.hex()}); "
                             "it belongs to another node or an older key")
        wrap, cipher, key_size = self._ciphers(magic)
        end = 24 + key_size + 16
        if len(sealed) < end + 12 + 16:
            raise VaultError(f"{name}: a sealed meshmpc file cut short")
        wrap_nonce, wrapped = sealed[12:24], sealed[24:end]
        nonce, body = sealed[end:end + 12], sealed[end + 12:]
        aad = magic + key_id + name.encode()
        try:
            data_key = wrap.decrypt(wrap_nonce, wrapped, aad)
            return cipher(data_key).decrypt(nonce, body, aad)
        except InvalidTag as exc:
            raise VaultError(f"{name}: altered, renamed or sealed for another name") from exc

    def keyed_hash(self, value: str, purpose: str) -> str:
        """HMAC-SHA256 of ``value`` under a key derived from the master key, hex.

        What a store must look rows up by (an applicant's credit code) is kept
        as this hash: equal values match, and without the node's key the hash
        cannot be recomputed from a list of candidate codes. ``purpose``
        separates the uses (one table's hashes do not match another's).
        """
        return hmac.new(self._lookup_key, f"{purpose}\x00{value}".encode(),
                        hashlib.sha256).hexdigest()

    def reseal(self, sealed: bytes, name: str, new: Vault) -> bytes:
        """The same file sealed under ``new``'s master key (key rotation)."""
        return new.seal(self.open(sealed, name), name)

    # --- files -------------------------------------------------------------------------
    def write(self, path: Path, data: bytes, name: str | None = None) -> None:
        """Seal ``data`` into ``path`` atomically (temporary name, then rename)."""
        tmp = path.with_name(f".{path.name}.sealing")
        tmp.write_bytes(self.seal(data, name or path.name))
        os.replace(tmp, path)

    def read(self, path: Path, name: str | None = None) -> bytes:
        return self.open(path.read_bytes(), name or path.name)

    def write_table(self, path: Path, table: pa.Table, name: str | None = None) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        self.write(path, sink.getvalue(), name)

    def read_table(self, path: Path, name: str | None = None) -> pa.Table:
        return pq.read_table(io.BytesIO(self.read(path, name)))


STREAM_MAGICS = (b"MMC1", b"MSC1")
"""Chunk-sealed scratch files (:mod:`meshmpc.data.sealedfile`): AES-256-GCM, SM4-GCM."""


def is_sealed(path: Path) -> bool:
    """True when ``path`` starts like a sealed file or a sealed scratch stream (no key needed)."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) in MAGICS + STREAM_MAGICS
    except OSError:
        return False
