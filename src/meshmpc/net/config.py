"""Cluster configuration (TOML): the parties, their addresses and pinned keys.

Example::

    [cluster]
    id = "sme-credit"
    connect_timeout_s = 15.0       # give up on a peer after this long
    handshake_timeout_s = 5.0      # drop a connection not authenticated by then
    max_handshakes = 64            # unauthenticated connections held at once
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
    key_file = "bank.key"          # optional; relative to this file

Every problem raises :class:`ConfigError` naming the file and the field; an
unknown key names the closest valid one. :attr:`ClusterConfig.fingerprint`
hashes everything the parties must agree on (not addresses or local
settings such as ``listen``, ``key_file`` or timeouts); nodes compare it when they connect.
"""

from __future__ import annotations

import difflib
import hashlib
import re
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
PARTY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""Party ids: short and plain, they travel in the fixed-layout HELLO."""

_TOP_KEYS = ("cluster", "parties")
_CLUSTER_KEYS = (
    "id", "connect_timeout_s", "handshake_timeout_s", "max_handshakes", "max_frame_bytes",
    "max_message_bytes", "wan", "suite",
)
_WAN_KEYS = ("bandwidth_mbps", "latency_ms")
_PARTY_KEYS = ("id", "address", "listen", "public_key", "key_file")


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

    @property
    def party_ids(self) -> list[str]:
        return [p.id for p in self.parties]

    def party(self, party_id: str) -> PartyConfig:
        for p in self.parties:
            if p.id == party_id:
                return p
        raise ConfigError(self.path, "parties", f"no party {party_id!r}; have {self.party_ids}")

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 over what every node must agree on: cluster id, parties in order
        with their keys, and the wire limits. Addresses are left out: nodes may
        reach a party by different routes (NAT, split DNS, a proxy)."""
        lines = [f"meshmpc-cluster-v3\n{self.cluster_id}\n{self.max_frame_bytes}\n"
                 f"{self.max_message_bytes}\n{self.suite}\n"]
        lines += [f"{p.id}\n{public_key_to_b64(p.public_key)}\n"
                  for p in self.parties]
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
            f"max_frame_bytes = {self.max_frame_bytes}",
            f"max_message_bytes = {self.max_message_bytes}",
            f"suite = {_toml_str(self.suite)}",
        ]
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
    )


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
    key_file = doc.get("key_file")
    key_path = None
    if key_file is not None:
        if not isinstance(key_file, str):
            raise ConfigError(path, f"{where}.key_file", "must be a string path")
        key_path = Path(key_file)
        if not key_path.is_absolute() and path is not None:
            key_path = path.parent / key_path
    return PartyConfig(party_id, host, port, public_key, key_path, listen_host, listen_port)
