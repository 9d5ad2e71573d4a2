"""Identity keys held in a PKCS#11 token (an HSM, a smart card, or SoftHSM2 in tests).

A party's key file may hold, instead of the key itself, a PKCS#11 URI (RFC 7512) naming
an Ed25519 key pair in a token::

    pkcs11:token=meshmpc;object=bank-identity?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/meshmpc/bank.pin

The private key never leaves the token (created with ``CKA_SENSITIVE`` and without
``CKA_EXTRACTABLE``); every handshake signature, audit checkpoint and node-to-node request
is signed inside it through ``CKM_EDDSA``. The PIN comes from ``pin-source`` (a file, mode
0600) or the environment variable ``MESHMPC_PKCS11_PIN``; a PIN written into the URI itself
(``pin-value``) is refused, since key files get copied around.

The token is reached through python-pkcs11 (a maintained binding of the PKCS#11 C API);
signatures are verified with libsodium like every other Ed25519 signature, so peers cannot
tell a token key from a file key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from nacl.signing import VerifyKey

from meshmpc.errors import ConfigError

URI_SCHEME = "pkcs11:"
PIN_ENV = "MESHMPC_PKCS11_PIN"
DEFAULT_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)
_PATH_ATTRS = ("token", "object", "id", "type", "manufacturer", "serial", "model",
               "library-manufacturer", "library-description", "library-version", "slot-id")
_QUERY_ATTRS = ("module-path", "module-name", "pin-source", "pin-value")


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of a PKCS#11 URI that meshmpc uses: token label, object label, module, PIN."""

    token: str
    label: str
    module: str
    pin_source: str | None = None

    @classmethod
    def parse(cls, text: str, where: Path | str = "key_file") -> Pkcs11Uri:
        """Parse ``pkcs11:token=...;object=...?module-path=...&pin-source=...``."""
        if not text.startswith(URI_SCHEME):
            raise ConfigError(where, "pkcs11", f"not a PKCS#11 URI (must start {URI_SCHEME!r})")
        path_part, _, query = text[len(URI_SCHEME):].partition("?")
        attrs: dict[str, str] = {}
        for item in filter(None, path_part.split(";")):
            name, sep, value = item.partition("=")
            if not sep or name not in _PATH_ATTRS:
                raise ConfigError(where, "pkcs11", f"unknown or malformed URI attribute {item!r}; "
                                  f"use token=LABEL;object=LABEL")
            attrs[name] = unquote(value)
        options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        for name in options:
            if name not in _QUERY_ATTRS:
                raise ConfigError(where, "pkcs11", f"unknown URI query attribute {name!r}; "
                                  f"valid: {', '.join(_QUERY_ATTRS)}")
        if "pin-value" in options:
            raise ConfigError(where, "pkcs11", "a PIN inside the URI is refused: use "
                              f"pin-source=file:/path (mode 0600) or ${PIN_ENV}")
        for needed in ("token", "object"):
            if not attrs.get(needed):
                raise ConfigError(where, "pkcs11", f"the URI needs {needed}=LABEL")
        module = options.get("module-path") or _default_module(where)
        return cls(attrs["token"], attrs["object"], module, options.get("pin-source"))

    def __str__(self) -> str:
        text = f"{URI_SCHEME}token={self.token};object={self.label}?module-path={self.module}"
        return text + (f"&pin-source={self.pin_source}" if self.pin_source else "")

    def pin(self, where: Path | str) -> str:
        """The user PIN: from ``pin-source`` (a file only its owner can read) or the env."""
        if self.pin_source is None:
            pin = os.environ.get(PIN_ENV)
            if not pin:
                raise ConfigError(where, "pkcs11", f"no PIN: add pin-source=file:/path to the "
                                  f"URI or set {PIN_ENV}")
            return pin
        path = Path(unquote(self.pin_source.removeprefix("file:")))
        return read_owner_only(path, "pin-source", "the token PIN")


def read_owner_only(path: Path, field: str, what: str) -> str:
    """The stripped text of a secret file, refusing one that group or others can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(path, field, f"cannot read {what}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(path, field, f"{what} is readable by others; chmod 600 it")
    return text


def _default_module(where: Path | str) -> str:
    for candidate in DEFAULT_MODULES:
        if Path(candidate).exists():
            return candidate
    raise ConfigError(where, "pkcs11", "no module-path in the URI and no SoftHSM2 module "
                      "found; add ?module-path=/path/to/your/pkcs11-module.so")


class _Signature:
    """What :meth:`nacl.signing.SigningKey.sign` returns, as far as callers use it."""

    def __init__(self, message: bytes, signature: bytes) -> None:
        self.message = message
        self.signature = signature


class Pkcs11SigningKey:
    """An Ed25519 signing key inside a PKCS#11 token, with the calls meshmpc makes of
    :class:`nacl.signing.SigningKey` (``sign(msg).signature``, ``verify_key``).

    One logged-in session per token and process, opened on first use and kept (logging in
    costs a PIN check in the token); its use is serialised, since PKCS#11 sessions are not
    thread-safe.
    """

    def __init__(self, uri: Pkcs11Uri, where: Path | str = "key_file") -> None:
        self.uri = uri
        self._where = where
        self._session, self._lock = _session(uri, where)
        self._private: Any = None
        self.verify_key = VerifyKey(self._find())

    def _find(self) -> bytes:
        """Find the key pair by label; returns the raw 32-byte public key."""
        pkcs11 = _module()
        try:
            with self._lock:
                self._private = self._session.get_key(
                    object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=self.uri.label)
                public = self._session.get_key(
                    object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=self.uri.label)
                point = public[pkcs11.Attribute.EC_POINT]
        except Exception as exc:  # the binding raises many PKCS#11 error classes
            raise ConfigError(self._where, "pkcs11", f"token {self.uri.token!r}, key "
                              f"{self.uri.label!r}: {type(exc).__name__}: {exc}") from exc
        return _raw_point(bytes(point), self._where)

    def sign(self, message: bytes) -> _Signature:
        pkcs11 = _module()
        with self._lock:
            signature = self._private.sign(bytes(message), mechanism=pkcs11.Mechanism.EDDSA)
        return _Signature(bytes(message), bytes(signature))

    def __bytes__(self) -> bytes:
        raise TypeError("a PKCS#11 key cannot be exported; it lives in its token")


_SESSIONS: dict[tuple[str, str], tuple[Any, threading.Lock, bytes]] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(uri: Pkcs11Uri, where: Path | str) -> tuple[Any, threading.Lock]:
    """This process's logged-in session with the token (PKCS#11 logs a whole application
    in, not one session, so there is one per token), and the lock that serialises its use."""
    pkcs11 = _module()
    pin = uri.pin(where)
    digest = hashlib.sha256(pin.encode()).digest()
    with _SESSIONS_LOCK:
        found = _SESSIONS.get((uri.module, uri.token))
        if found is not None:
            if not hmac.compare_digest(found[2], digest):
                raise ConfigError(where, "pkcs11", f"token {uri.token!r}: wrong PIN (not the "
                                  "one this process logged in with)")
            return found[0], found[1]
        try:
            token = pkcs11.lib(uri.module).get_token(token_label=uri.token)
            session = token.open(rw=True, user_pin=pin)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(where, "pkcs11", f"token {uri.token!r}: cannot log in: "
                              f"{type(exc).__name__}: {exc}") from exc
        lock = threading.Lock()
        _SESSIONS[(uri.module, uri.token)] = (session, lock, digest)
        return session, lock


def generate_in_token(uri: Pkcs11Uri, where: Path | str = "--pkcs11") -> bytes:
    """Create an Ed25519 key pair labelled ``uri.label`` in the token (non-extractable,
    sensitive); refuses when the label is taken. Returns the raw public key."""
    pkcs11 = _module()
    from pkcs11.util.ec import encode_named_curve_parameters

    attribute = pkcs11.Attribute
    session, lock = _session(uri, where)
    try:
        with lock:
            _require_free_label(session, attribute, uri, where)
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC_EDWARDS,
                {attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112")}, local=True)
            public, _private = params.generate_keypair(
                store=True, label=uri.label,
                private_template={attribute.SENSITIVE: True, attribute.EXTRACTABLE: False})
            return _raw_point(bytes(public[attribute.EC_POINT]), where)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(where, "pkcs11", f"cannot create a key in token {uri.token!r}: "
                          f"{type(exc).__name__}: {exc}") from exc


def _require_free_label(session: Any, attribute: Any, uri: Pkcs11Uri, where: Path | str
                        ) -> None:
    """Refuse to create a second object under a label the token already holds."""
    if list(session.get_objects({attribute.LABEL: uri.label})):
        raise ConfigError(where, "pkcs11", f"token {uri.token!r} already holds an object "
                          f"labelled {uri.label!r}; keep using it or choose another object= "
                          "label")


def _raw_point(point: bytes, where: Path | str) -> bytes:
    """CKA_EC_POINT of an Ed25519 key: the 32 bytes, DER-wrapped as an OCTET STRING by
    most tokens (SoftHSM2 among them), bare by some."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    raise ConfigError(where, "pkcs11", f"the token's key is not an Ed25519 key "
                      f"(EC_POINT of {len(point)} bytes)")


def _module() -> Any:
    try:
        import pkcs11
    except ImportError as exc:  # an optional dependency: only nodes with a token need it
        raise ConfigError("key_file", "pkcs11", "PKCS#11 keys need python-pkcs11: "
                          "pip install 'meshmpc[pkcs11]'") from exc
    return pkcs11


# ----- secrets wrapped by an AES key that never leaves the token --------------------------

WRAP_NONCE = 12


def create_wrapping_key(uri: Pkcs11Uri, where: Path | str = "pkcs11") -> None:
    """An AES-256 key labelled ``uri.label`` inside the token (sensitive, not extractable),
    for wrapping other keys (the vault's master key); refuses a label already taken."""
    pkcs11 = _module()
    attribute = pkcs11.Attribute
    session, lock = _session(uri, where)
    try:
        with lock:
            _require_free_label(session, attribute, uri, where)
            session.generate_key(pkcs11.KeyType.AES, 256, label=uri.label, store=True,
                                 template={attribute.SENSITIVE: True,
                                           attribute.EXTRACTABLE: False})
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(where, "pkcs11", f"cannot create a wrapping key in token "
                          f"{uri.token!r}: {type(exc).__name__}: {exc}") from exc


def wrap_secret(uri: Pkcs11Uri, secret: bytes, aad: bytes, where: Path | str = "pkcs11"
                ) -> bytes:
    """``secret`` encrypted inside the token with AES-256-GCM under its key ``uri.label``:
    a fresh nonce (from the OS) followed by ciphertext and tag."""
    nonce = os.urandom(WRAP_NONCE)
    return nonce + _gcm(uri, where, "encrypt", nonce, secret, aad)


def unwrap_secret(uri: Pkcs11Uri, blob: bytes, aad: bytes, where: Path | str = "pkcs11"
                  ) -> bytes:
    """The inverse of :func:`wrap_secret`; ConfigError when the token refuses (wrong key,
    altered blob, other associated data)."""
    if len(blob) < WRAP_NONCE + 16:
        raise ConfigError(where, "pkcs11", "a token-wrapped secret cut short")
    return _gcm(uri, where, "decrypt", blob[:WRAP_NONCE], blob[WRAP_NONCE:], aad)


def _gcm(uri: Pkcs11Uri, where: Path | str, op: str, nonce: bytes, data: bytes, aad: bytes
         ) -> bytes:
    pkcs11 = _module()
    session, lock = _session(uri, where)
    try:
        with lock:
            key = session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=uri.label)
            method = key.encrypt if op == "encrypt" else key.decrypt
            return bytes(method(data, mechanism=pkcs11.Mechanism.AES_GCM,
                                mechanism_param=pkcs11.GCMParams(nonce, aad, 128)))
    except Exception as exc:
        raise ConfigError(where, "pkcs11", f"token {uri.token!r}, key {uri.label!r}: cannot "
                          f"{op}: {type(exc).__name__}: {exc}") from exc
