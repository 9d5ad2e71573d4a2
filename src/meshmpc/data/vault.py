"""Encryption at rest for what jobs leave on disk: envelope AES-256-GCM under a node-held key.

A node keeps one master key (32 random bytes from the OS, file mode 0600,
``keys/<party>.vault``; a PKCS#11 token can hold it instead where configured).
Every file is sealed with a fresh data key, itself wrapped by the master key,
and the file's logical name is bound in as associated data, so a sealed file
moved to another name or another node does not open::

    "MMV1" | key id (8) | wrap nonce (12) | wrapped data key + tag (48) | nonce (12)
           | ciphertext + tag

AES-GCM comes from OpenSSL through ``cryptography`` (never our own cipher);
SM4-GCM joins with the national-cryptography suite. Rotating the master key
re-seals each file under the new key (:meth:`Vault.reseal`).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from meshmpc.errors import ConfigError, MeshMPCError

MAGIC = b"MMV1"
HEADER = len(MAGIC) + 8 + 12 + 48 + 12
VAULT_DIR_ENV = "MESHMPC_VAULT_DIR"
MAX_SEALED = (1 << 31) - 1 - HEADER
"""OpenSSL's one-shot AES-GCM takes at most 2 GiB per call; a bigger artefact is refused."""


def default_vault_dir() -> Path:
    """Where local runs keep each party's vault key: ``$MESHMPC_VAULT_DIR`` or ~/.config.

    Kept outside the output folder on purpose: a copy of ``out/`` alone opens nothing.
    """
    env = os.environ.get(VAULT_DIR_ENV)
    return Path(env) if env else Path.home() / ".config" / "meshmpc" / "vault"


def vault_key_beside(identity_key: Path) -> Path:
    """A node's vault key lives beside its identity key: keys/bank.key -> keys/bank.vault."""
    return identity_key.with_suffix(".vault")


class VaultError(MeshMPCError, ValueError):
    """A sealed file does not open: wrong key, wrong name, or it was altered."""


class Vault:
    """Seal and open files under this node's master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise VaultError("a vault master key is 32 bytes")
        self._master = AESGCM(master_key)
        self._lookup_key = HKDF(hashes.SHA256(), 32, salt=None,
                                info=b"meshmpc-vault-lookup-v1").derive(master_key)
        self.key_id = hashlib.sha256(b"meshmpc-vault-key-id|" + master_key).digest()[:8]

    @classmethod
    def create(cls, path: Path) -> Vault:
        """Make a new master key file (mode 0600); refuses to overwrite one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
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
        return cls(key)

    def seal(self, data: bytes, name: str) -> bytes:
        """Encrypt ``data`` for the logical ``name`` (bound as associated data)."""
        if len(data) > MAX_SEALED:
            raise VaultError(f"{name}: {len(data):,} bytes is more than one sealed file holds "
                             f"({MAX_SEALED:,}); split the artefact")
        data_key, wrap_nonce, nonce = os.urandom(32), os.urandom(12), os.urandom(12)
        aad = MAGIC + self.key_id + name.encode()
        wrapped = self._master.encrypt(wrap_nonce, data_key, aad)
        body = AESGCM(data_key).encrypt(nonce, data, aad)
        return MAGIC + self.key_id + wrap_nonce + wrapped + nonce + body

    def open(self, sealed: bytes, name: str) -> bytes:
        """Decrypt what :meth:`seal` made for ``name``; VaultError if anything differs."""
        if len(sealed) < HEADER + 16 or not sealed.startswith(MAGIC):
            raise VaultError(f"{name}: not a sealed meshmpc file")
        key_id = sealed[4:12]
        if key_id != self.key_id:
            raise VaultError(f"{name}: sealed under another vault key ({key_id.hex()}); "
                             "it belongs to another node or an older key")
        wrap_nonce, wrapped = sealed[12:24], sealed[24:72]
        nonce, body = sealed[72:84], sealed[84:]
        aad = MAGIC + key_id + name.encode()
        try:
            data_key = self._master.decrypt(wrap_nonce, wrapped, aad)
            return AESGCM(data_key).decrypt(nonce, body, aad)
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


def is_sealed(path: Path) -> bool:
    """True when ``path`` starts like a sealed file (cheap check, no key needed)."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False
