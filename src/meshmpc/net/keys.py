"""Party identity keys, pinned in the cluster config: Ed25519 (libsodium via PyNaCl)
for the default link suite, SM2 (:mod:`meshmpc.crypto.gm`) for the ``gm`` suite.

The private key file holds the 32-byte Ed25519 seed in base64, or ``sm2:``
and the 32-byte SM2 private key in base64, or a ``pkcs11:`` URI naming an Ed25519
key pair inside a token (:mod:`meshmpc.net.custody`: the key never leaves it); it
is created with mode 0600. The public key is printed in base64 for the cluster
config (32 bytes for Ed25519, a 65-byte uncompressed point for SM2, so the two
cannot be confused).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nacl.signing import SigningKey, VerifyKey

from meshmpc.crypto.gm import SM2_PUBLIC_SIZE, Sm2PublicKey, Sm2SigningKey
from meshmpc.errors import ConfigError
from meshmpc.net.custody import URI_SCHEME, Pkcs11SigningKey, Pkcs11Uri, read_owner_only

SUITES = ("default", "gm")
_SM2_PREFIX = "sm2:"
PublicKey = VerifyKey | Sm2PublicKey


class SignedMessage(Protocol):
    @property
    def signature(self) -> bytes: ...


class Ed25519Signer(Protocol):
    """An Ed25519 key that signs: a file key (:class:`nacl.signing.SigningKey`) or a token key
    (:class:`meshmpc.net.custody.Pkcs11SigningKey`)."""

    @property
    def verify_key(self) -> VerifyKey: ...

    def sign(self, message: bytes) -> SignedMessage: ...


@dataclass(frozen=True)
class IdentityKey:
    """A party's long-term signing key."""

    party: str
    key: SigningKey | Sm2SigningKey | Pkcs11SigningKey

    @classmethod
    def generate(cls, party: str, suite: str = "default") -> IdentityKey:
        """A fresh key for ``suite`` ("default": Ed25519, "gm": SM2)."""
        if suite not in SUITES:
            raise ValueError(f"unknown link suite {suite!r}; use one of {SUITES}")
        return cls(party, Sm2SigningKey.generate() if suite == "gm" else SigningKey.generate())

    @property
    def suite(self) -> str:
        return "gm" if isinstance(self.key, Sm2SigningKey) else "default"

    @property
    def in_token(self) -> bool:
        """Whether the private key lives in a PKCS#11 token (never in memory)."""
        return isinstance(self.key, Pkcs11SigningKey)

    @property
    def signing_key(self) -> Ed25519Signer:
        """The Ed25519 key of a default-suite identity (the platform's audit log and
        peering sign with it); a gm identity has none."""
        if isinstance(self.key, Sm2SigningKey):
            raise ConfigError(
                f"{self.party}.key", "key_file", f"{self.party}'s identity is an SM2 (gm "
                "suite) key; this feature needs an Ed25519 key from `meshmpc keygen`")
        return self.key

    @property
    def public_key(self) -> PublicKey:
        if isinstance(self.key, Sm2SigningKey):
            return self.key.public_key
        return self.key.verify_key

    @property
    def public_b64(self) -> str:
        return public_key_to_b64(self.public_key)

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.key, Sm2SigningKey):
            return self.key.sign(message)
        return bytes(self.key.sign(message).signature)

    @classmethod
    def in_new_token_key(cls, party: str, uri: Pkcs11Uri) -> IdentityKey:
        """Create an Ed25519 key pair inside the token ``uri`` names, and use it."""
        from meshmpc.net.custody import generate_in_token

        generate_in_token(uri)
        return cls(party, Pkcs11SigningKey(uri))

    def save(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<party>.key`` (mode 0600; for a token key, its URI) and ``<party>.pub``;
        refuse to overwrite a key."""
        directory.mkdir(parents=True, exist_ok=True)
        private_path = directory / f"{self.party}.key"
        public_path = directory / f"{self.party}.pub"
        if private_path.exists():
            raise FileExistsError(f"{private_path} exists; remove it first to make a new key")
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            if isinstance(self.key, Pkcs11SigningKey):
                fh.write(str(self.key.uri) + "\n")
            else:
                prefix = _SM2_PREFIX if self.suite == "gm" else ""
                fh.write(prefix + base64.b64encode(bytes(self.key)).decode() + "\n")
        public_path.write_text(self.public_b64 + "\n")
        return private_path, public_path

    @classmethod
    def load(cls, party: str, path: Path) -> IdentityKey:
        """Read a private key file, refusing one that others can read."""
        text = read_owner_only(path, "key_file", "the private key")
        if text.startswith(URI_SCHEME):
            return cls(party, Pkcs11SigningKey(Pkcs11Uri.parse(text, path), path))
        sm2 = text.startswith(_SM2_PREFIX)
        try:
            secret = base64.b64decode(text.removeprefix(_SM2_PREFIX), validate=True)
            return cls(party, Sm2SigningKey(secret) if sm2 else SigningKey(secret))
        except Exception as exc:
            kind = "an sm2: base64 SM2 private key" if sm2 else "a base64 Ed25519 seed"
            raise ConfigError(path, "key_file", f"not {kind}: {exc}") from exc


def public_key_to_b64(key: PublicKey) -> str:
    return base64.b64encode(bytes(key)).decode()


def public_key_suite(key: PublicKey) -> str:
    """The link suite a pinned key belongs to."""
    return "gm" if isinstance(key, Sm2PublicKey) else "default"


def pinned_key_from_b64(text: str) -> PublicKey:
    """Parse a pinned key of either suite: 32 bytes are Ed25519, 65 an SM2 point;
    raises ValueError when malformed."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) == SM2_PUBLIC_SIZE:
        return Sm2PublicKey(raw)
    if len(raw) != 32:
        raise ValueError(f"expected 32 (Ed25519) or {SM2_PUBLIC_SIZE} (SM2) bytes, got {len(raw)}")
    return VerifyKey(raw)


def public_key_from_b64(text: str) -> VerifyKey:
    """Parse a base64 Ed25519 public key; raises ValueError when malformed."""
    key = pinned_key_from_b64(text)
    if not isinstance(key, VerifyKey):
        raise ValueError("expected an Ed25519 key (32 bytes), got an SM2 key")
    return key
