"""Party identity keys: Ed25519 (libsodium via PyNaCl), pinned in the cluster config.

The private key file holds the 32-byte seed in base64 and is created with
mode 0600; the public key is printed in base64 for the cluster config.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey, VerifyKey

from meshmpc.errors import ConfigError


@dataclass(frozen=True)
class IdentityKey:
    """A party's long-term signing key."""

    party: str
    signing_key: SigningKey

    @classmethod
    def generate(cls, party: str) -> IdentityKey:
        return cls(party, SigningKey.generate())

    @property
    def public_b64(self) -> str:
        return public_key_to_b64(self.signing_key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return bytes(self.signing_key.sign(message).signature)

    def save(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<party>.key`` (mode 0600) and ``<party>.pub``; refuse to overwrite a key."""
        directory.mkdir(parents=True, exist_ok=True)
        private_path = directory / f"{self.party}.key"
        public_path = directory / f"{self.party}.pub"
        if private_path.exists():
            raise FileExistsError(f"{private_path} exists; remove it first to make a new key")
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(bytes(self.signing_key)).decode() + "\n")
        public_path.write_text(self.public_b64 + "\n")
        return private_path, public_path

    @classmethod
    def load(cls, party: str, path: Path) -> IdentityKey:
        """Read a private key file, refusing one that others can read."""
        try:
            mode = path.stat().st_mode
            text = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(path, "key_file", f"cannot read private key: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(path, "key_file", "private key readable by others; chmod 600 it")
        try:
            seed = base64.b64decode(text, validate=True)
            return cls(party, SigningKey(seed))
        except Exception as exc:
            raise ConfigError(path, "key_file", f"not a base64 Ed25519 seed: {exc}") from exc


def public_key_to_b64(key: VerifyKey) -> str:
    return base64.b64encode(bytes(key)).decode()


def public_key_from_b64(text: str) -> VerifyKey:
    """Parse a base64 Ed25519 public key; raises ValueError when malformed."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return VerifyKey(raw)
