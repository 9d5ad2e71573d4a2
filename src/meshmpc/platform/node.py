"""One party's node: its directory, configuration, identity, database, accounts, grants and audit.

``meshmpc node init --party bank --dir node/`` lays out::

    node/node.toml        party id, HTTP listen address, database URL, mesh listen address
    node/keys/bank.key    the node's Ed25519 identity key (0600); bank.pub beside it
    node/keys/bank.vault  the vault key sealing the node's job artefacts at rest (0600)
    node/node.db          SQLite database (WAL) unless node.toml names PostgreSQL
    node/jobs/            job working directories (artefacts per job, per step)

and creates the first administrator account, printing its one-time TOTP
enrolment URI. :class:`Node` opens all of it for the API server.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from meshmpc import __version__
from meshmpc.data.vault import Vault, vault_key_beside
from meshmpc.errors import ConfigError
from meshmpc.net.custody import Pkcs11Uri
from meshmpc.net.keys import IdentityKey
from meshmpc.platform.audit import AuditLog
from meshmpc.platform.auth import Accounts
from meshmpc.platform.consent import DEFAULT_PURPOSES
from meshmpc.platform.db import NodeDatabase
from meshmpc.platform.grants import GrantBook
from meshmpc.platform.readcache import PageCache

CONFIG_NAME = "node.toml"
CONFIG_KEYS = {"party", "http_listen", "db", "mesh_listen", "mesh_address", "cluster",
               "job_timeout_s", "job_memory_mb", "audit_checkpoint_every",
               "audit_checkpoint_seconds", "audit_syslog", "password_memory_mb", "purposes"}


@dataclass(frozen=True)
class NodeConfig:
    """The settings in ``node.toml`` (unknown keys are refused with a suggestion)."""

    party: str
    directory: Path
    http_listen: str = "127.0.0.1:8700"
    db: str = ""
    mesh_listen: str = "127.0.0.1:7700"
    mesh_address: str = ""
    cluster: str = ""
    job_timeout_s: float = 6 * 3600
    job_memory_mb: int = 8192
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: float = 5.0
    audit_syslog: str = ""
    password_memory_mb: int = 64
    purposes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PURPOSES))

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.directory / 'node.db'}"

    @property
    def key_path(self) -> Path:
        return self.directory / "keys" / f"{self.party}.key"

    @property
    def vault_path(self) -> Path:
        """The vault key beside the identity key (job runs find it there, too)."""
        return vault_key_beside(self.key_path)

    @classmethod
    def load(cls, directory: Path) -> NodeConfig:
        path = directory / CONFIG_NAME
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(path, "node.toml", "no node here; run `meshmpc node init` first"
                              ) from exc
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(path, "node.toml", f"cannot read: {exc}") from exc
        for key in raw:
            if key not in CONFIG_KEYS:
                close = difflib.get_close_matches(key, sorted(CONFIG_KEYS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(path, key, f"unknown setting{hint}")
        if "party" not in raw:
            raise ConfigError(path, "party", "missing: the party id of this node")
        for name, days in (raw.get("purposes") or {}).items():
            if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                raise ConfigError(path, f"purposes.{name}", "must be a whole number of days "
                                  "(how long artefacts of that purpose are kept)")
        return cls(directory=directory, **raw)

    def dump(self) -> str:
        lines = []
        for key in sorted(CONFIG_KEYS - {"purposes"}):
            value = getattr(self, key)
            if value in ("", None):
                continue
            text = f'"{value}"' if isinstance(value, str) else str(value)
            lines.append(f"{key} = {text}")
        lines.append("\n[purposes]  # purpose = days its artefacts are kept")
        lines.extend(f"{name} = {days}" for name, days in sorted(self.purposes.items()))
        return "\n".join(lines) + "\n"


def init_node(directory: Path, party: str, admin: str, password: str,
              pkcs11: str | None = None, **settings: Any) -> tuple[NodeConfig, str | None]:
    """Create a node directory; returns its config and the admin's TOTP enrolment URI.
    With ``pkcs11`` (a PKCS#11 URI) the identity key is created inside that token."""
    if (directory / CONFIG_NAME).exists():
        raise ConfigError(directory / CONFIG_NAME, "node.toml",
                          "a node already lives here; use another --dir or remove it")
    config = NodeConfig(party=party, directory=directory, **settings)
    (directory / "jobs").mkdir(parents=True, exist_ok=True)
    identity = (IdentityKey.in_new_token_key(party, Pkcs11Uri.parse(pkcs11, "--pkcs11"))
                if pkcs11 else IdentityKey.generate(party))
    identity.save(directory / "keys")
    Vault.create(config.vault_path, _vault_token(pkcs11, party))
    (directory / CONFIG_NAME).write_text(config.dump())
    node = Node(config)
    uri = node.accounts.create_user(admin, password, ["admin"])
    node.audit.append("node.init", admin, {"party": party, "version": __version__})
    return config, uri


def _vault_token(pkcs11: str | None, party: str) -> str | None:
    """With the identity in a token, the vault's master key is wrapped by an AES key in
    the same token (object ``<party>-vault``)."""
    if not pkcs11:
        return None
    uri = Pkcs11Uri.parse(pkcs11, "--pkcs11")
    return str(replace(uri, label=f"{party}-vault"))


class Node:
    """Everything one running node holds; the API and the job orchestration use it."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.party = config.party
        self.identity = IdentityKey.load(config.party, config.key_path)
        self.vault = Vault.open_or_create(config.vault_path)  # nodes made before the vault
        self.db = NodeDatabase(config.db_url)
        self.db.upgrade()
        self.accounts = Accounts(self.db, config.password_memory_mb)
        self.grants = GrantBook(self.db, self.party)
        self.pages = PageCache(self.db.versions)
        forward = None
        if config.audit_syslog:
            from meshmpc.platform.audit import syslog_forwarder

            host, _, port = config.audit_syslog.rpartition(":")
            forward = syslog_forwarder((host, int(port)) if host else config.audit_syslog)
        self.audit = AuditLog(self.db.engine, self.party, self.identity.signing_key,
                              config.audit_checkpoint_every, config.audit_checkpoint_seconds,
                              forward=forward)

    @classmethod
    def open(cls, directory: Path) -> Node:
        return cls(NodeConfig.load(directory))
