"""Cluster configuration (TOML): the parties, their addresses and pinned keys.

Example::

    [cluster]
    id = "sme-credit"
    connect_timeout_s = 15.0       # give up on a peer after this long
    max_frame_bytes = 16777216     # refuse larger frames

    [cluster.wan]                  # optional emulation of a slow link
    bandwidth_mbps = 100
    latency_ms = 50                # added one way, per direction

    [[parties]]
    id = "bank"
    address = "127.0.0.1:7001"
    public_key = "base64 Ed25519 public key from `meshmpc keygen`"
    key_file = "bank.key"          # optional; relative to this file

Every problem raises :class:`ConfigError` naming the file and the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.signing import VerifyKey

from meshmpc.errors import ConfigError
from meshmpc.net.framing import DEFAULT_MAX_FRAME
from meshmpc.net.keys import public_key_from_b64, public_key_to_b64


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
    id: str
    host: str
    port: int
    public_key: VerifyKey
    key_file: Path | None = None


@dataclass(frozen=True)
class ClusterConfig:
    cluster_id: str
    parties: list[PartyConfig]
    connect_timeout_s: float = 15.0
    max_frame_bytes: int = DEFAULT_MAX_FRAME
    wan: WanProfile | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def party_ids(self) -> list[str]:
        return [p.id for p in self.parties]

    def party(self, party_id: str) -> PartyConfig:
        for p in self.parties:
            if p.id == party_id:
                return p
        raise ConfigError(self.path, "parties", f"no party {party_id!r}; have {self.party_ids}")

    def to_toml(self) -> str:
        """Serialise back to TOML (the format :func:`load_config` reads)."""
        lines = [
            "[cluster]",
            f'id = "{self.cluster_id}"',
            f"connect_timeout_s = {self.connect_timeout_s}",
            f"max_frame_bytes = {self.max_frame_bytes}",
        ]
        if self.wan is not None:
            lines += ["", "[cluster.wan]", f"latency_ms = {self.wan.latency_ms}"]
            if self.wan.bandwidth_mbps is not None:
                lines.append(f"bandwidth_mbps = {self.wan.bandwidth_mbps}")
        for p in self.parties:
            lines += ["", "[[parties]]", f'id = "{p.id}"', f'address = "{p.host}:{p.port}"']
            lines.append(f'public_key = "{public_key_to_b64(p.public_key)}"')
            if p.key_file is not None:
                lines.append(f'key_file = "{p.key_file}"')
        return "\n".join(lines) + "\n"


def load_config(path: str | Path) -> ClusterConfig:
    """Read and check a cluster config file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(path, "-", f"cannot read the file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "-", f"not valid TOML: {exc}") from exc
    return parse_config(doc, path)


def parse_config(doc: dict[str, Any], path: Path | None = None) -> ClusterConfig:
    """Build a :class:`ClusterConfig` from a parsed TOML document."""
    cluster = _table(doc, "cluster", path)
    raw_parties = doc.get("parties")
    if not isinstance(raw_parties, list) or len(raw_parties) < 2:
        raise ConfigError(path, "parties", "need a [[parties]] table for each of 2+ parties")
    parties = [_party(i, p, path) for i, p in enumerate(raw_parties)]
    ids = [p.id for p in parties]
    if len(set(ids)) != len(ids):
        raise ConfigError(path, "parties.id", f"party ids must be unique: {ids}")
    wan = None
    if "wan" in cluster:
        wan_doc = _table(cluster, "wan", path)
        wan = WanProfile(
            bandwidth_mbps=_number(wan_doc, "bandwidth_mbps", path, "cluster.wan", None),
            latency_ms=_number(wan_doc, "latency_ms", path, "cluster.wan", 0.0) or 0.0,
        )
    return ClusterConfig(
        cluster_id=_string(cluster, "id", path, "cluster"),
        parties=parties,
        connect_timeout_s=_number(cluster, "connect_timeout_s", path, "cluster", 15.0) or 15.0,
        max_frame_bytes=int(
            _number(cluster, "max_frame_bytes", path, "cluster", DEFAULT_MAX_FRAME) or 0
        ),
        wan=wan,
        path=path,
    )


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


def _number(
    doc: dict[str, Any], name: str, path: Path | None, where: str, default: float | None
) -> float | None:
    value = doc.get(name, default)
    if value is None:
        return None
    allowed_zero = name == "latency_ms" and value == 0
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        value <= 0 and not allowed_zero
    ):
        raise ConfigError(path, f"{where}.{name}", f"must be a positive number, got {value!r}")
    return float(value)


def _party(index: int, doc: Any, path: Path | None) -> PartyConfig:
    where = f"parties[{index}]"
    if not isinstance(doc, dict):
        raise ConfigError(path, where, "must be a table")
    party_id = _string(doc, "id", path, where)
    address = _string(doc, "address", path, where)
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(path, f"{where}.address", f"expected HOST:PORT, got {address!r}")
    try:
        public_key = public_key_from_b64(_string(doc, "public_key", path, where))
    except ValueError as exc:
        raise ConfigError(path, f"{where}.public_key", f"not a base64 Ed25519 key: {exc}") from exc
    key_file = doc.get("key_file")
    key_path = None
    if key_file is not None:
        if not isinstance(key_file, str):
            raise ConfigError(path, f"{where}.key_file", "must be a string path")
        key_path = Path(key_file)
        if not key_path.is_absolute() and path is not None:
            key_path = path.parent / key_path
    return PartyConfig(party_id, host.strip("[]"), int(port_text), public_key, key_path)
