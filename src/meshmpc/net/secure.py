"""The secure channel: handshake and per-direction AEAD with frame counters.

Handshake (SIGMA-style, two plaintext records each way, then key confirmation):

1. HELLO, a fixed binary layout (no general-purpose parser touches
   unauthenticated bytes): ``"MMPC" | u8 wire version | u8 suite | 32-byte
   config fingerprint | ephemeral public key | u8 n | n bytes of the claimed
   party id``. The ephemeral key is 32 bytes of X25519 (libsodium via PyNaCl)
   in the default suite, a 65-byte SM2 point in the ``gm`` suite.
2. AUTH: a signature by the sender's identity key over ``label ||
   transcript || party``, where the transcript is the hash (SHA-512, or SM3
   in the gm suite) of the dialer's HELLO then the listener's HELLO. The peer
   checks it against the public key pinned for that party in the cluster
   config, and only then compares config fingerprints (so a mismatch is
   reported by the authenticated peer, never by a stranger).

Session keys, default suite: HKDF-SHA256 over the X25519 shared secret,
salted with the transcript, gives one AES-256-GCM key per direction, fresh
for every link. gm suite (shaped after RFC 8998, TLS 1.3 with
TLS_SM4_GCM_SM3 and sm2sig_sm3): Ed25519 becomes SM2 signatures, the key
agreement is the SM2 key exchange of GB/T 32918.3 between the pinned identity
keys and fresh ephemeral points (the ephemerals give forward secrecy), HKDF
uses SM3, and records are SM4-GCM with the same header, nonce and counters.
Each record's nonce is its 64-bit counter, which also travels in the
authenticated header: a counter below the expected one is a replay or
reordering, above it a drop, and any modification fails authentication.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_box_keypair, crypto_scalarmult
from nacl.exceptions import BadSignatureError

from meshmpc.crypto.gm import GmAead, Sm2PublicKey, Sm2SigningKey, Sm4Gcm, hkdf_sm3, sm3
from meshmpc.net import framing
from meshmpc.net.errors import (
    AuthenticationError,
    ConfigMismatchError,
    DroppedFrameError,
    ProtocolMismatchError,
    ReplayedFrameError,
    TamperedFrameError,
)
from meshmpc.net.keys import IdentityKey, PublicKey

WIRE_VERSION = 3
TAG_SIZE = 16
HELLO_MAGIC = b"MMPC"
_HELLO_HEAD = struct.Struct("<4sBB32s")
SUITE_CODES = {"default": 0, "gm": 1}
_SUITE_NAMES = {code: name for name, code in SUITE_CODES.items()}
EPHEMERAL_SIZES = {"default": 32, "gm": 65}
MAX_PARTY_ID = 64
MAX_HELLO = _HELLO_HEAD.size + max(EPHEMERAL_SIZES.values()) + 1 + MAX_PARTY_ID
SIGNATURE_SIZE = 64  # Ed25519, and SM2 as r || s
_AUTH_LABELS = {"default": b"meshmpc-auth-v3", "gm": b"meshmpc-auth-gm-v3"}
_KDF_INFOS = {"default": b"meshmpc-session-v3", "gm": b"meshmpc-session-gm-v3"}


@dataclass
class Hello:
    """One side's first handshake record."""

    party: str
    ephemeral_public: bytes
    fingerprint: bytes
    raw: bytes
    suite: str = "default"


def pack_hello(party: str, fingerprint: bytes, ephemeral_public: bytes,
               suite: str = "default") -> bytes:
    """The HELLO body: fixed fields, the suite's ephemeral key, then the party id."""
    name = party.encode()
    if not 0 < len(name) <= MAX_PARTY_ID:
        raise ValueError(f"party id {party!r} must be 1-{MAX_PARTY_ID} bytes")
    if len(ephemeral_public) != EPHEMERAL_SIZES[suite]:
        raise ValueError(f"{suite} ephemeral keys are {EPHEMERAL_SIZES[suite]} bytes")
    head = _HELLO_HEAD.pack(HELLO_MAGIC, WIRE_VERSION, SUITE_CODES[suite], fingerprint)
    return head + ephemeral_public + bytes([len(name)]) + name


def parse_hello(body: bytes) -> Hello:
    """Parse a HELLO body; anything but the exact layout raises ProtocolMismatchError."""
    if len(body) < _HELLO_HEAD.size or body[:4] != HELLO_MAGIC:
        raise ProtocolMismatchError(None, "not a meshmpc handshake (bad magic or length)")
    magic, version, code, fingerprint = _HELLO_HEAD.unpack_from(body)
    if version != WIRE_VERSION:
        raise ProtocolMismatchError(
            None, f"peer speaks wire version {version}, we speak {WIRE_VERSION}: "
            "run the same meshmpc version on every node"
        )
    suite = _SUITE_NAMES.get(code)
    if suite is None:
        raise ProtocolMismatchError(None, f"malformed handshake hello (unknown suite {code})")
    start = _HELLO_HEAD.size + EPHEMERAL_SIZES[suite]
    if len(body) <= start:
        raise ProtocolMismatchError(None, "malformed handshake hello (length)")
    eph, n, name = body[_HELLO_HEAD.size : start], body[start], body[start + 1 :]
    if not 0 < n <= MAX_PARTY_ID or len(name) != n:
        raise ProtocolMismatchError(None, "malformed handshake hello (party id length)")
    try:
        party = name.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolMismatchError(None, "malformed handshake hello (party id)") from exc
    if not party.isprintable():
        raise ProtocolMismatchError(None, "malformed handshake hello (party id)")
    return Hello(party, bytes(eph), bytes(fingerprint), bytes(body), suite)


class Handshake:
    """State of one side of the handshake; the suite follows the identity key's."""

    def __init__(self, identity: IdentityKey, fingerprint: bytes, dialer: bool) -> None:
        self.identity = identity
        self.fingerprint = fingerprint
        self.dialer = dialer
        self.suite = identity.suite
        self._pinned: PublicKey | None = None
        if isinstance(identity.key, Sm2SigningKey):
            self._eph_secret, self._eph_public = identity.key.begin_key_exchange()
        else:
            self._eph_public, self._eph_secret = crypto_box_keypair()
        self.own_hello = pack_hello(identity.party, fingerprint, self._eph_public, self.suite)
        self.peer_hello: Hello | None = None

    def read_hello(self, body: bytes) -> Hello:
        """Parse the peer's HELLO (layout, version, suite; the fingerprint is checked
        after the peer has authenticated, by :meth:`verify_peer`)."""
        hello = parse_hello(body)
        if hello.suite != self.suite:
            raise ProtocolMismatchError(
                hello.party, f"peer uses link suite {hello.suite!r}, we use {self.suite!r}: "
                "set the same [cluster] suite and keys on every node"
            )
        self.peer_hello = hello
        return hello

    def transcript(self) -> bytes:
        assert self.peer_hello is not None
        first, second = (
            (self.own_hello, self.peer_hello.raw) if self.dialer
            else (self.peer_hello.raw, self.own_hello)
        )
        if self.suite == "gm":
            return sm3(first + second)
        return hashlib.sha512(first + second).digest()

    def auth_message(self) -> bytes:
        """Our AUTH body: the signature binding our identity to this transcript."""
        label = _AUTH_LABELS[self.suite]
        return self.identity.sign(label + self.transcript() + self.identity.party.encode())

    def verify_peer(self, signature: bytes, pinned: PublicKey | tuple[PublicKey, ...]) -> None:
        """Check the peer's AUTH signature against its pinned identity key (any of the
        keys it may use: during a rotation, the new and the old one), then that the
        peer runs with the same cluster config (fingerprint)."""
        assert self.peer_hello is not None
        peer = self.peer_hello.party
        message = _AUTH_LABELS[self.suite] + self.transcript() + peer.encode()
        candidates = pinned if isinstance(pinned, tuple) else (pinned,)
        self._pinned = next((key for key in candidates
                             if self._signed_by(key, message, signature)), None)
        if self._pinned is None:
            raise AuthenticationError(
                peer, "identity key does not match the key pinned in the cluster config")
        if self.peer_hello.fingerprint != self.fingerprint:
            raise ConfigMismatchError(
                peer, f"cluster config differs: ours has fingerprint {self.fingerprint.hex()[:16]}"
                f", {peer}'s has {self.peer_hello.fingerprint.hex()[:16]}; give every node the "
                "same cluster config (only listen, key_file and timeouts may differ)"
            )

    @property
    def peer_key(self) -> PublicKey | None:
        """The identity key the peer authenticated with (after :meth:`verify_peer`)."""
        return self._pinned

    def _signed_by(self, key: PublicKey, message: bytes, signature: bytes) -> bool:
        if len(signature) != SIGNATURE_SIZE or (self.suite == "gm") != isinstance(
                key, Sm2PublicKey):
            return False
        try:
            key.verify(message, signature)
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True

    def session(self, peer: str) -> SessionCipher:
        """Derive this link's fresh directional keys (after :meth:`verify_peer`)."""
        assert self.peer_hello is not None and self._pinned is not None
        make: Callable[[bytes], AESGCM | GmAead]
        if self.suite == "gm":
            dialer_key, listener_key = self._gm_keys(peer)
            make = Sm4Gcm
        else:
            shared = crypto_scalarmult(self._eph_secret, self.peer_hello.ephemeral_public)
            okm = HKDF(
                algorithm=hashes.SHA256(), length=64, salt=self.transcript(),
                info=_KDF_INFOS["default"],
            ).derive(shared)
            dialer_key, listener_key = okm[:32], okm[32:]
            make = AESGCM
        if self.dialer:
            return SessionCipher(make(dialer_key), make(listener_key), peer)
        return SessionCipher(make(listener_key), make(dialer_key), peer)

    def _gm_keys(self, peer: str) -> tuple[bytes, bytes]:
        assert self.peer_hello is not None and isinstance(self._pinned, Sm2PublicKey)
        signing_key = self.identity.key
        assert isinstance(signing_key, Sm2SigningKey)
        try:
            shared = signing_key.end_key_exchange(
                self._eph_secret, self.peer_hello.ephemeral_public, self._pinned,
                responder=not self.dialer, length=32,
            )
        except ValueError as exc:
            raise AuthenticationError(peer, f"SM2 key exchange failed: {exc}") from exc
        okm = hkdf_sm3(shared, self.transcript(), _KDF_INFOS["gm"], 32)
        return okm[:16], okm[16:]


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


class SessionCipher:
    """An AEAD (AES-256-GCM, or SM4-GCM in the gm suite) in each direction, with the
    record counter as nonce."""

    def __init__(self, send: AESGCM | GmAead, recv: AESGCM | GmAead, peer: str) -> None:
        self._send = send
        self._recv = recv
        self.peer = peer
        self.send_counter = 0
        self.recv_counter = 0

    def seal(self, record_type: int, plaintext: bytes | memoryview) -> bytearray:
        """One complete encrypted record (header and ciphertext) for ``plaintext``."""
        body_len = len(plaintext) + TAG_SIZE
        header = framing.pack_header(body_len, self.send_counter, record_type)
        out = bytearray(framing.HEADER_SIZE + body_len)
        out[: framing.HEADER_SIZE] = header
        self._send.encrypt_into(
            _nonce(self.send_counter), plaintext, header, memoryview(out)[framing.HEADER_SIZE :]
        )
        self.send_counter += 1
        return out

    def seal_parts(self, record_type: int, plaintext: bytes | memoryview,
                   out: bytearray | None = None) -> tuple[bytes, bytes | bytearray]:
        """The record as (header, ciphertext): for large plaintexts, this skips the
        zero-filled output buffer of :meth:`seal` and the copy into it. ``out`` (exactly
        ``len(plaintext) + 16`` bytes) receives the ciphertext instead of a new buffer."""
        body_len = len(plaintext) + TAG_SIZE
        header = framing.pack_header(body_len, self.send_counter, record_type)
        nonce = _nonce(self.send_counter)
        body: bytes | bytearray
        if out is not None and len(out) == body_len:
            self._send.encrypt_into(nonce, plaintext, header, memoryview(out))
            body = out
        else:
            body = self._send.encrypt(nonce, plaintext, header)
        self.send_counter += 1
        return header, body

    def recover(self, sealed: tuple[bytes | bytearray, ...]) -> bytes:
        """The plaintext of a record this cipher sealed, as written: ``(record,)`` from
        :meth:`seal` or ``(header, body)`` from :meth:`seal_parts`.

        A resumable session keeps the records it sent until the peer acknowledges them.
        Keeping the ciphertext (already made for the socket) costs nothing, where a copy
        of every plaintext cost about 30 % of bulk throughput; on a resume, which is
        rare, the sender decrypts its own records here and seals them again under the
        new connection's keys. The send key only decrypts here, it never encrypts
        again, so no key and nonce pair is used for two plaintexts.
        """
        if len(sealed) == 1:
            view = memoryview(sealed[0])
            header, body = bytes(view[: framing.HEADER_SIZE]), view[framing.HEADER_SIZE :]
        else:
            header, body = bytes(sealed[0]), memoryview(sealed[1])
        counter = framing.HEADER.unpack(header)[1]
        return self._send.decrypt(_nonce(counter), body, header)

    def _check_counter(self, counter: int) -> None:
        if counter < self.recv_counter:
            raise ReplayedFrameError(
                self.peer, f"frame {counter} replayed or reordered (expected {self.recv_counter})"
            )
        if counter > self.recv_counter:
            raise DroppedFrameError(
                self.peer, f"frame {counter} arrived, expected {self.recv_counter}: frames lost"
            )

    def open(self, record: framing.Record) -> bytes:
        """Authenticate and decrypt one record; returns the plaintext."""
        self._check_counter(record.counter)
        try:
            plain = self._recv.decrypt(_nonce(record.counter), record.body, record.header)
        except InvalidTag as exc:
            raise TamperedFrameError(self.peer, f"frame {record.counter} failed "
                                     "authentication (tampered or corrupted)") from exc
        self.recv_counter += 1
        return plain

    def open_into(self, record: framing.Record, out: memoryview) -> None:
        """Authenticate and decrypt one record straight into ``out`` (exact size)."""
        self._check_counter(record.counter)
        if len(out) != len(record.body) - TAG_SIZE:
            raise TamperedFrameError(self.peer, f"frame {record.counter} has the wrong length")
        try:
            self._recv.decrypt_into(_nonce(record.counter), record.body, record.header, out)
        except InvalidTag as exc:
            raise TamperedFrameError(self.peer, f"frame {record.counter} failed "
                                     "authentication (tampered or corrupted)") from exc
        self.recv_counter += 1

