"""Cluster configuration (TOML): the parties, their addresses and pinned keys.

Example::

    [cluster]
    id = "sme-credit"
    connect_timeout_s = 15.0       # give up on a peer after this long
    handshake_timeout_s = 5.0      # drop a connection not authenticated by then
    max_handshakes = 64            # unauthenticated connections held at once
    resume_grace_s = 30.0          # a dropped link may be resumed this long (0: never)
    resend_buffer_bytes = 67108864 # unacknowledged bytes kept for resending, per link
    keepalive_s = 2.0              # ping a link silent this long (0: no pings) ...
    keepalive_timeout_s = 20.0     # ... and drop (then resume) one silent this long
    max_frame_bytes = 16777216     # refuse larger records
    max_message_bytes = 1073741824 # refuse larger messages

    [cluster.wan]                  # optional emulation of a slow link
    bandwidth_mbps = 100
    latency_ms = 50                # added one way, per direction

    [[parties]]
    id = "bank"
    address = "bank.example:7001"  # where the others dial this party
    listen = "0.0.0.0:7001"        # optional: where it binds (default: address)
    public_key = "base64 Ed25519 public key from `meshmpc keygen`"
    key_file = "bank.key"          # optional; relative to this file (may hold a pkcs11: URI)
    previous_keys = ["base64 key being rotated out"]   # optional: accepted as well ...
    previous_keys_until = "2026-12-31T00:00:00Z"       # ... until then (required with it)

Key rotation: pin the party's new key as ``public_key`` and its old one in
``previous_keys`` with an end to the overlap; both are accepted until then, so nodes
can switch keys one by one without stopping. Revocation: ``[cluster] revoked_keys``
(base64 keys, refused at once) and ``revocation_file`` (one base64 key per line,
``#`` comments; re-read when it changes, so a running server refuses a key added
there on its next handshake, within a second).

Every problem raises :class:`ConfigError` naming the file and the field; an
unknown key names the closest valid one. :attr:`ClusterConfig.fingerprint`
hashes everything the parties must agree on (not addresses, keys — each link
authenticates its peer's key itself, and keys change during a rotation — or local
settings such as ``listen``, ``key_file`` or timeouts); nodes compare it when they connect.
"""

from __future__ import annotations

import base64
import calendar
import difflib
import hashlib
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshmpc.errors import ConfigError
from meshmpc.net.framing import DEFAULT_MAX_FRAME
from meshmpc.net.keys import (
    SUITES,
    PublicKey,
    pinned_key_from_b64,
    public_key_suite,
    public_key_to_b64,
)

DEFAULT_MAX_MESSAGE = 1 << 30
"""Largest message a peer may send (1 GiB); protocols send big data in chunks."""
DEFAULT_CONNECT_TIMEOUT_S = 15.0
DEFAULT_HANDSHAKE_TIMEOUT_S = 5.0
DEFAULT_MAX_HANDSHAKES = 64
DEFAULT_RESUME_GRACE_S = 30.0
"""A link that drops is re-established and resumed within this many seconds, else fails."""
DEFAULT_RESEND_BUFFER = 64 * 1024 * 1024
"""Bytes of sent but unacknowledged records each link keeps for resending (then it waits)."""
DEFAULT_KEEPALIVE_S = 2.0
"""A link that has received nothing for this long sends a PING (the peer answers PONG)."""
DEFAULT_KEEPALIVE_TIMEOUT_S = 20.0
"""A link that has received nothing for this long, although it pinged, is presumed dead
(half-open: the peer vanished without FIN or RST) and is dropped, then resumed."""
PARTY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""Party ids: short and plain, they travel in the fixed-layout HELLO."""

_TOP_KEYS = ("cluster", "parties")
_CLUSTER_KEYS = (
    "id", "connect_timeout_s", "handshake_timeout_s", "max_handshakes", "max_frame_bytes",
    "max_message_bytes", "wan", "suite", "revoked_keys", "revocation_file", "resume_grace_s",
    "resend_buffer_bytes", "keepalive_s", "keepalive_timeout_s",
)
_WAN_KEYS = ("bandwidth_mbps", "latency_ms")
_PARTY_KEYS = ("id", "address", "listen", "public_key", "key_file", "previous_keys",
               "previous_keys_until")


@dataclass(frozen=True)
class WanProfile:
    """Emulated wide-area link: a bandwidth cap and an added one-way latency."""

    bandwidth_mbps: float | None = None
    latency_ms: float = 0.0

    @property
    def bytes_per_s(self) -> float | None:
        return None if self.bandwidth_mbps is None else self.bandwidth_mbps * 1e6 / 8


@dataclass(frozen=True)
class PartyConfig:
    """One party: advertised ``host:port`` (dialed by peers), bind address, pinned key."""

    id: str
    host: str
    port: int
    public_key: PublicKey
    key_file: Path | None = None
    listen_host: str | None = None
    listen_port: int | None = None
    previous_keys: tuple[PublicKey, ...] = ()
    previous_keys_until: float | None = None
    """Unix time at which ``previous_keys`` stop being accepted."""

    def keys_at(self, now: float) -> tuple[PublicKey, ...]:
        """The keys this party may authenticate with at ``now``: its pinned key, and
        the keys being rotated out while their overlap lasts."""
        if self.previous_keys and self.previous_keys_until is not None and (
                now < self.previous_keys_until):
            return (self.public_key, *self.previous_keys)
        return (self.public_key,)

    @property
    def address(self) -> str:
        return _join(self.host, self.port)

    @property
    def bind(self) -> tuple[str, int]:
        """Where this party listens: ``listen`` when given, else its advertised address."""
        host = self.host if self.listen_host is None else self.listen_host
        return host, self.port if self.listen_port is None else self.listen_port


@dataclass(frozen=True)
class ClusterConfig:
    cluster_id: str
    parties: list[PartyConfig]
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    max_frame_bytes: int = DEFAULT_MAX_FRAME
    wan: WanProfile | None = None
    path: Path | None = field(default=None, compare=False)
    handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S
    max_handshakes: int = DEFAULT_MAX_HANDSHAKES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE
    suite: str = "default"
    revoked_keys: frozenset[bytes] = frozenset()
    revocation_file: Path | None = None
    resume_grace_s: float = DEFAULT_RESUME_GRACE_S
    resend_buffer_bytes: int = DEFAULT_RESEND_BUFFER
    keepalive_s: float = DEFAULT_KEEPALIVE_S
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S

    @property
    def party_ids(self) -> list[str]:
        return [p.id for p in self.parties]

    def party(self, party_id: str) -> PartyConfig:
        for p in self.parties:
            if p.id == party_id:
                return p
        raise ConfigError(self.path, "parties", f"no party {party_id!r}; have {self.party_ids}")

    def accepted_keys(self, party_id: str, now: float | None = None) -> tuple[PublicKey, ...]:
        """The keys ``party_id`` may authenticate with now: pinned and still-overlapping
        previous keys, minus every revoked one (from the config and the revocation file).
        Raises :class:`ConfigError` when none is left."""
        moment = time.time() if now is None else now
        revoked = self.revoked_keys | _revocations.read(self.revocation_file)
        keys = tuple(k for k in self.party(party_id).keys_at(moment) if bytes(k) not in revoked)
        if not keys:
            raise ConfigError(self.path, "parties.public_key",
                              f"every key of party {party_id!r} is revoked or expired; pin its "
                              "new key (meshmpc keygen on its node) before connecting")
        return keys

    def is_revoked(self, key: PublicKey) -> bool:
        """Whether ``key`` is revoked now (the config's list or the re-read revocation
        file); open links check their peer's key with this on every keepalive tick."""
        return bytes(key) in self.revoked_keys | _revocations.read(self.revocation_file)

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 over what every node must agree on: cluster id, parties in order, the
        suite and the wire limits. Addresses are left out (nodes may reach a party by
        different routes: NAT, split DNS, a proxy), and so are keys: every link checks
        its peer's key itself, and during a rotation nodes pin different sets."""
        lines = [f"meshmpc-cluster-v4\n{self.cluster_id}\n{self.max_frame_bytes}\n"
                 f"{self.max_message_bytes}\n{self.suite}\n"]
        lines += [f"{p.id}\n" for p in self.parties]
        return hashlib.sha256("".join(lines).encode()).digest()

    @property
    def fingerprint_hex(self) -> str:
        """The first 16 hex digits of :attr:`fingerprint`, as nodes print it."""
        return self.fingerprint.hex()[:16]

    def to_toml(self) -> str:
        """Serialise back to TOML (the format :func:`load_config` reads)."""
        lines = [
            "[cluster]",
            f"id = {_toml_str(self.cluster_id)}",
            f"connect_timeout_s = {self.connect_timeout_s}",
            f"handshake_timeout_s = {self.handshake_timeout_s}",
            f"max_handshakes = {self.max_handshakes}",
            f"resume_grace_s = {self.resume_grace_s}",
            f"resend_buffer_bytes = {self.resend_buffer_bytes}",
            f"keepalive_s = {self.keepalive_s}",
            f"keepalive_timeout_s = {self.keepalive_timeout_s}",
            f"max_frame_bytes = {self.max_frame_bytes}",
            f"max_message_bytes = {self.max_message_bytes}",
            f"suite = {_toml_str(self.suite)}",
        ]
        if self.revoked_keys:
            keys = ", ".join(_toml_str(_b64(k)) for k in sorted(self.revoked_keys))
            lines.append(f"revoked_keys = [{keys}]")
        if self.revocation_file is not None:
            lines.append(f"revocation_file = {_toml_str(str(self.revocation_file))}")
        if self.wan is not None:
            lines += ["", "[cluster.wan]", f"latency_ms = {self.wan.latency_ms}"]
            if self.wan.bandwidth_mbps is not None:
                lines.append(f"bandwidth_mbps = {self.wan.bandwidth_mbps}")
        for p in self.parties:
            lines += ["", "[[parties]]", f"id = {_toml_str(p.id)}",
                      f"address = {_toml_str(p.address)}"]
            if p.listen_host is not None or p.listen_port is not None:
                lines.append(f"listen = {_toml_str(_join(*p.bind))}")
            lines.append(f"public_key = {_toml_str(public_key_to_b64(p.public_key))}")
            if p.previous_keys and p.previous_keys_until is not None:
                keys = ", ".join(_toml_str(public_key_to_b64(k)) for k in p.previous_keys)
                until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.previous_keys_until))
                lines += [f"previous_keys = [{keys}]", f"previous_keys_until = {_toml_str(until)}"]
            if p.key_file is not None:
                lines.append(f"key_file = {_toml_str(str(p.key_file))}")
        return "\n".join(lines) + "\n"


def load_config(path: str | Path) -> ClusterConfig:
    """Read and check a cluster config file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(path, "-", f"cannot read the file: {exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "-", f"not valid TOML: {exc}") from exc
    return parse_config(doc, path)


def parse_config(doc: dict[str, Any], path: Path | None = None) -> ClusterConfig:
    """Build a :class:`ClusterConfig` from a parsed TOML document."""
    _known_keys(doc, _TOP_KEYS, path, "")
    cluster = _table(doc, "cluster", path)
    _known_keys(cluster, _CLUSTER_KEYS, path, "cluster.")
    raw_parties = doc.get("parties")
    if not isinstance(raw_parties, list) or len(raw_parties) < 2:
        raise ConfigError(path, "parties", "need a [[parties]] table for each of 2+ parties")
    parties = [_party(i, p, path) for i, p in enumerate(raw_parties)]
    _check_unique(parties, path)
    suite = _suite(cluster, parties, path)
    revoked = frozenset(bytes(k) for k in _key_list(cluster, "revoked_keys", path, "cluster"))
    for p in parties:
        if bytes(p.public_key) in revoked:
            raise ConfigError(path, f"parties.{p.id}.public_key", f"party {p.id!r} is pinned "
                              "to a revoked key; pin its new key")
    keepalive = _keepalive(cluster, path)
    return ClusterConfig(
        cluster_id=_string(cluster, "id", path, "cluster"),
        parties=parties,
        connect_timeout_s=_positive(cluster, "connect_timeout_s", path, DEFAULT_CONNECT_TIMEOUT_S),
        handshake_timeout_s=_positive(
            cluster, "handshake_timeout_s", path, DEFAULT_HANDSHAKE_TIMEOUT_S
        ),
        max_handshakes=_integer(cluster, "max_handshakes", path, DEFAULT_MAX_HANDSHAKES),
        max_frame_bytes=_integer(cluster, "max_frame_bytes", path, DEFAULT_MAX_FRAME),
        max_message_bytes=_integer(cluster, "max_message_bytes", path, DEFAULT_MAX_MESSAGE),
        wan=_wan(cluster, path),
        path=path,
        suite=suite,
        revoked_keys=revoked,
        revocation_file=_relative_path(cluster, "revocation_file", path, "cluster"),
        resume_grace_s=_non_negative(cluster, "resume_grace_s", path, DEFAULT_RESUME_GRACE_S),
        resend_buffer_bytes=_integer(cluster, "resend_buffer_bytes", path,
                                     DEFAULT_RESEND_BUFFER),
        keepalive_s=keepalive[0],
        keepalive_timeout_s=keepalive[1],
    )


def _keepalive(cluster: dict[str, Any], path: Path | None) -> tuple[float, float]:
    """``keepalive_s`` and ``keepalive_timeout_s``; the timeout must leave room for pings."""
    every = _non_negative(cluster, "keepalive_s", path, DEFAULT_KEEPALIVE_S)
    timeout = _positive(cluster, "keepalive_timeout_s", path, DEFAULT_KEEPALIVE_TIMEOUT_S)
    if every and timeout < 2 * every:
        raise ConfigError(path, "cluster.keepalive_timeout_s",
                          f"{timeout:g} s is less than twice keepalive_s ({every:g} s): a "
                          "healthy link would be dropped before its PING is answered; raise "
                          "it (default 20 s with pings every 2 s)")
    return every, timeout


def _suite(cluster: dict[str, Any], parties: list[PartyConfig], path: Path | None) -> str:
    """The link suite, and a check that every pinned key belongs to it."""
    suite = cluster.get("suite", "default")
    if suite not in SUITES:
        raise ConfigError(path, "cluster.suite", f"{suite!r}: use one of {', '.join(SUITES)}")
    for p in parties:
        if public_key_suite(p.public_key) != suite:
            raise ConfigError(
                path, "parties.public_key",
                f"party {p.id!r} has a {public_key_suite(p.public_key)} key but the cluster "
                f"suite is {suite!r}; run `meshmpc keygen --suite {suite}` for every party",
            )
    return suite


def _known_keys(doc: dict[str, Any], allowed: tuple[str, ...], path: Path | None,
                where: str) -> None:
    for key in doc:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(allowed)}"
            raise ConfigError(path, f"{where}{key}", f"unknown key; {hint}")


def _check_unique(parties: list[PartyConfig], path: Path | None) -> None:
    ids = [p.id for p in parties]
    if len(set(ids)) != len(ids):
        raise ConfigError(path, "parties.id", f"party ids must be unique: {ids}")
    owner: dict[bytes, str] = {}
    for p in parties:
        raw = bytes(p.public_key)
        if raw in owner:
            raise ConfigError(
                path, "parties.public_key",
                f"parties {owner[raw]!r} and {p.id!r} are pinned to the same public key; "
                "each party needs its own key (run `meshmpc keygen` on each node)",
            )
        owner[raw] = p.id


def _wan(cluster: dict[str, Any], path: Path | None) -> WanProfile | None:
    if "wan" not in cluster:
        return None
    wan_doc = _table(cluster, "wan", path)
    _known_keys(wan_doc, _WAN_KEYS, path, "cluster.wan.")
    bandwidth = wan_doc.get("bandwidth_mbps")
    latency = wan_doc.get("latency_ms", 0.0)
    if bandwidth is not None and not _is_number(bandwidth, positive=True):
        raise ConfigError(path, "cluster.wan.bandwidth_mbps",
                          f"must be a positive number, got {bandwidth!r}")
    if not _is_number(latency, positive=False):
        raise ConfigError(path, "cluster.wan.latency_ms",
                          f"must be a number >= 0, got {latency!r}")
    return WanProfile(None if bandwidth is None else float(bandwidth), float(latency))


def _table(doc: dict[str, Any], name: str, path: Path | None) -> dict[str, Any]:
    value = doc.get(name)
    if not isinstance(value, dict):
        raise ConfigError(path, name, "missing table")
    return value


def _string(doc: dict[str, Any], name: str, path: Path | None, where: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(path, f"{where}.{name}", "missing or not a non-empty string")
    return value


def _is_number(value: Any, positive: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return False
    return value > 0 if positive else value >= 0


def _positive(doc: dict[str, Any], name: str, path: Path | None, default: float) -> float:
    value = doc.get(name, default)
    if not _is_number(value, positive=True) or value == float("inf"):
        raise ConfigError(path, f"cluster.{name}", f"must be a positive number, got {value!r}")
    return float(value)


def _non_negative(doc: dict[str, Any], name: str, path: Path | None, default: float) -> float:
    value = doc.get(name, default)
    if not _is_number(value, positive=False) or value == float("inf"):
        raise ConfigError(path, f"cluster.{name}", f"must be a number >= 0 (0 turns it off), "
                          f"got {value!r}")
    return float(value)


def _integer(doc: dict[str, Any], name: str, path: Path | None, default: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(path, f"cluster.{name}", f"must be a positive integer, got {value!r}")
    return value


def _toml_str(text: str) -> str:
    """``text`` as a TOML basic string (quotes, backslashes, controls escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _host_port(doc: dict[str, Any], name: str, path: Path | None, where: str) -> tuple[str, int]:
    text = _string(doc, name, path, where)
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):  # [IPv6]:port
        host = host[1:-1]
    ok_port = port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536
    if not sep or not host or not ok_port or any(c in host for c in '[]" \t\n'):
        raise ConfigError(path, f"{where}.{name}", f"expected HOST:PORT, got {text!r}")
    return host, int(port_text)


def _party(index: int, doc: Any, path: Path | None) -> PartyConfig:
    where = f"parties[{index}]"
    if not isinstance(doc, dict):
        raise ConfigError(path, where, "must be a table")
    _known_keys(doc, _PARTY_KEYS, path, f"{where}.")
    party_id = _string(doc, "id", path, where)
    if not PARTY_ID.fullmatch(party_id):
        raise ConfigError(path, f"{where}.id", f"{party_id!r}: use 1-64 letters, digits, _ . -")
    host, port = _host_port(doc, "address", path, where)
    listen_host, listen_port = (
        _host_port(doc, "listen", path, where) if "listen" in doc else (None, None)
    )
    try:
        public_key = pinned_key_from_b64(_string(doc, "public_key", path, where))
    except ValueError as exc:
        raise ConfigError(path, f"{where}.public_key", f"not a base64 public key: {exc}") from exc
    key_path = _relative_path(doc, "key_file", path, where)
    previous = _key_list(doc, "previous_keys", path, where)
    until = None
    if previous or "previous_keys_until" in doc:
        if not previous or "previous_keys_until" not in doc:
            raise ConfigError(path, f"{where}.previous_keys_until", "previous_keys and "
                              "previous_keys_until go together: a rotation's overlap must end")
        until = _timestamp(doc, "previous_keys_until", path, where)
    return PartyConfig(party_id, host, port, public_key, key_path, listen_host, listen_port,
                       previous, until)


def _relative_path(doc: dict[str, Any], name: str, path: Path | None, where: str
                   ) -> Path | None:
    """An optional path setting, relative to the config file's folder."""
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(path, f"{where}.{name}", "must be a string path")
    result = Path(value)
    return result if result.is_absolute() or path is None else path.parent / result


def _key_list(doc: dict[str, Any], name: str, path: Path | None, where: str
              ) -> tuple[PublicKey, ...]:
    value = doc.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, f"{where}.{name}", "must be a list of base64 public keys")
    try:
        return tuple(pinned_key_from_b64(v) for v in value)
    except ValueError as exc:
        raise ConfigError(path, f"{where}.{name}", f"not a base64 public key: {exc}") from exc


def _timestamp(doc: dict[str, Any], name: str, path: Path | None, where: str) -> float:
    """An RFC 3339 UTC time (``2026-12-31T00:00:00Z``; TOML date-times are accepted too)."""
    value = doc[name]
    if hasattr(value, "timestamp"):  # a TOML offset date-time
        return float(value.timestamp())
    if isinstance(value, str):
        try:
            return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
        except ValueError:
            pass
    raise ConfigError(path, f"{where}.{name}", f"expected a UTC time like "
                      f"2026-12-31T00:00:00Z, got {value!r}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class _RevocationFiles:
    """Revocation lists read from disk, re-read when the file changes (checked at most once
    a second per file), so long-running servers pick up a revocation without a restart."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[float, float, frozenset[bytes]]] = {}

    def read(self, path: Path | None) -> frozenset[bytes]:
        if path is None:
            return frozenset()
        now = time.monotonic()
        cached = self._cache.get(path)
        if cached is not None and now - cached[0] < 1.0:
            return cached[2]
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise ConfigError(path, "cluster.revocation_file", "missing; create it (it may be "
                              "empty) or remove the setting") from None
        if cached is not None and cached[1] == mtime:
            self._cache[path] = (now, mtime, cached[2])
            return cached[2]
        keys = _parse_revocations(path)
        self._cache[path] = (now, mtime, keys)
        return keys


def _parse_revocations(path: Path) -> frozenset[bytes]:
    keys = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            keys.add(bytes(pinned_key_from_b64(text)))
        except ValueError as exc:
            raise ConfigError(path, f"line {number}", f"not a base64 public key: {exc}") from exc
    return frozenset(keys)


_revocations = _RevocationFiles()
