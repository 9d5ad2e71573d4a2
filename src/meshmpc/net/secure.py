"""The secure channel: handshake and per-direction AEAD with frame counters.

Handshake (SIGMA-style, two plaintext records each way, then key confirmation):

1. HELLO, a fixed binary layout (no general-purpose parser touches
   unauthenticated bytes): ``"MMPC" | u8 wire version | 32-byte config
   fingerprint | 32-byte X25519 ephemeral public key (libsodium via PyNaCl) |
   u8 n | n bytes of the claimed party id``.
2. AUTH: an Ed25519 signature by the sender's identity key over
   ``"meshmpc-auth-v2" || transcript || party``, where the transcript is the
   SHA-512 of the dialer's HELLO then the listener's HELLO. The peer checks
   it against the public key pinned for that party in the cluster config, and
   only then compares config fingerprints (so a mismatch is reported by the
   authenticated peer, never by a stranger).

Session keys: HKDF-SHA256 over the X25519 shared secret, salted with the
transcript, gives one AES-256-GCM key per direction, fresh for every link.
Each record's nonce is its 64-bit counter, which also travels in the
authenticated header: a counter below the expected one is a replay or
reordering, above it a drop, and any modification fails authentication.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_box_keypair, crypto_scalarmult
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from meshmpc.net import framing
from meshmpc.net.errors import (
    AuthenticationError,
    ConfigMismatchError,
    DroppedFrameError,
    ProtocolMismatchError,
    ReplayedFrameError,
    TamperedFrameError,
)
from meshmpc.net.keys import IdentityKey

WIRE_VERSION = 2
TAG_SIZE = 16
HELLO_MAGIC = b"MMPC"
_HELLO_FIXED = struct.Struct("<4sB32s32sB")
MAX_PARTY_ID = 64
MAX_HELLO = _HELLO_FIXED.size + MAX_PARTY_ID
SIGNATURE_SIZE = 64
_AUTH_LABEL = b"meshmpc-auth-v2"
_KDF_INFO = b"meshmpc-session-v2"


@dataclass
class Hello:
    """One side's first handshake record."""

    party: str
    ephemeral_public: bytes
    fingerprint: bytes
    raw: bytes


def pack_hello(party: str, fingerprint: bytes, ephemeral_public: bytes) -> bytes:
    """The HELLO body: fixed fields then the party id."""
    name = party.encode()
    if not 0 < len(name) <= MAX_PARTY_ID:
        raise ValueError(f"party id {party!r} must be 1-{MAX_PARTY_ID} bytes")
    return _HELLO_FIXED.pack(HELLO_MAGIC, WIRE_VERSION, fingerprint, ephemeral_public,
                             len(name)) + name


def parse_hello(body: bytes) -> Hello:
    """Parse a HELLO body; anything but the exact layout raises ProtocolMismatchError."""
    if len(body) < _HELLO_FIXED.size or body[:4] != HELLO_MAGIC:
        raise ProtocolMismatchError(None, "not a meshmpc handshake (bad magic or length)")
    magic, version, fingerprint, eph, n = _HELLO_FIXED.unpack_from(body)
    if version != WIRE_VERSION:
        raise ProtocolMismatchError(
            None, f"peer speaks wire version {version}, we speak {WIRE_VERSION}: "
            "run the same meshmpc version on every node"
        )
    name = body[_HELLO_FIXED.size :]
    if not 0 < n <= MAX_PARTY_ID or len(name) != n:
        raise ProtocolMismatchError(None, "malformed handshake hello (party id length)")
    try:
        party = name.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolMismatchError(None, "malformed handshake hello (party id)") from exc
    if not party.isprintable():
        raise ProtocolMismatchError(None, "malformed handshake hello (party id)")
    return Hello(party, bytes(eph), bytes(fingerprint), bytes(body))


class Handshake:
    """State of one side of the handshake."""

    def __init__(self, identity: IdentityKey, fingerprint: bytes, dialer: bool) -> None:
        self.identity = identity
        self.fingerprint = fingerprint
        self.dialer = dialer
        self._eph_public, self._eph_secret = crypto_box_keypair()
        self.own_hello = pack_hello(identity.party, fingerprint, self._eph_public)
        self.peer_hello: Hello | None = None

    def read_hello(self, body: bytes) -> Hello:
        """Parse the peer's HELLO (layout and version; the fingerprint is checked after
        the peer has authenticated, by :meth:`verify_peer`)."""
        self.peer_hello = parse_hello(body)
        return self.peer_hello

    def transcript(self) -> bytes:
        assert self.peer_hello is not None
        first, second = (
            (self.own_hello, self.peer_hello.raw) if self.dialer
            else (self.peer_hello.raw, self.own_hello)
        )
        return hashlib.sha512(first + second).digest()

    def auth_message(self) -> bytes:
        """Our AUTH body: the signature binding our identity to this transcript."""
        return self.identity.sign(_AUTH_LABEL + self.transcript() + self.identity.party.encode())

    def verify_peer(self, signature: bytes, pinned: VerifyKey) -> None:
        """Check the peer's AUTH signature against its pinned identity key, then that
        the peer runs with the same cluster config (fingerprint)."""
        assert self.peer_hello is not None
        peer = self.peer_hello.party
        message = _AUTH_LABEL + self.transcript() + peer.encode()
        try:
            if len(signature) != SIGNATURE_SIZE:
                raise ValueError("bad signature length")
            pinned.verify(message, signature)
        except (BadSignatureError, ValueError, TypeError) as exc:
            raise AuthenticationError(
                peer, "identity key does not match the key pinned in the cluster config"
            ) from exc
        if self.peer_hello.fingerprint != self.fingerprint:
            raise ConfigMismatchError(
                peer, f"cluster config differs: ours has fingerprint {self.fingerprint.hex()[:16]}"
                f", {peer}'s has {self.peer_hello.fingerprint.hex()[:16]}; give every node the "
                "same cluster config (only listen, key_file and timeouts may differ)"
            )

    def session(self, peer: str) -> SessionCipher:
        """Derive this link's fresh directional keys."""
        assert self.peer_hello is not None
        shared = crypto_scalarmult(self._eph_secret, self.peer_hello.ephemeral_public)
        okm = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=self.transcript(), info=_KDF_INFO
        ).derive(shared)
        dialer_key, listener_key = okm[:32], okm[32:]
        if self.dialer:
            return SessionCipher(dialer_key, listener_key, peer)
        return SessionCipher(listener_key, dialer_key, peer)


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


class SessionCipher:
    """AES-256-GCM in each direction, with the record counter as nonce."""

    def __init__(self, send_key: bytes, recv_key: bytes, peer: str) -> None:
        self._send = AESGCM(send_key)
        self._recv = AESGCM(recv_key)
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

    def seal_parts(self, record_type: int, plaintext: bytes | memoryview) -> tuple[bytes, bytes]:
        """The record as (header, ciphertext): for large plaintexts, this skips the
        zero-filled output buffer of :meth:`seal` and the copy into it."""
        body_len = len(plaintext) + TAG_SIZE
        header = framing.pack_header(body_len, self.send_counter, record_type)
        body = self._send.encrypt(_nonce(self.send_counter), plaintext, header)
        self.send_counter += 1
        return header, body

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

