"""Versioned strategies: propose, validate, publish with maker-checker, roll back, challenge.

Tables (SQLAlchemy Core, created when missing, in any database
:func:`meshmpc.platform.db.make_engine` opens - SQLite by default, a node's
PostgreSQL too):

* ``credit_strategy_versions``: every proposed version (document, SHA-256,
  author, status, approver);
* ``credit_strategy_service``: per strategy, the champion version, an optional
  challenger with its traffic share, and a ``generation`` counter bumped by
  every change, which running decision services poll to hot-update.

Publication is one transaction (the version's status and the service row
change together), so a service never sees half a publication. Publishing,
rolling back and starting a challenger need an actor with the ``approver``
role who is not the version's author (maker-checker); proposing needs
``strategy_editor``. Every publication goes to the audit log when one is given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from meshmpc.errors import MeshMPCError
from meshmpc.platform.db import make_engine
from meshmpc_credit.strategy.document import CompiledStrategy, document_hash, parse_document
from meshmpc_credit.strategy.validate import validate

metadata = sa.MetaData()
versions_table = sa.Table(
    "credit_strategy_versions", metadata,
    sa.Column("strategy", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # draft | published | retired
    sa.Column("approver", sa.String(64)),
    sa.Column("published", sa.Float),
    sa.Column("note", sa.Text, default=""),
)
service_table = sa.Table(
    "credit_strategy_service", metadata,
    sa.Column("strategy", sa.String(64), primary_key=True),
    sa.Column("champion", sa.Integer, nullable=False),
    sa.Column("challenger", sa.Integer),
    sa.Column("challenger_share", sa.Float, nullable=False, default=0.0),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)


class MakerCheckerError(MeshMPCError, PermissionError):
    """The actor may not do this (wrong role, or approving their own change)."""


@dataclass(frozen=True)
class Actor:
    """Who acts, with their roles (from a node's accounts or passed explicitly)."""

    name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class ServiceState:
    """What a decision service should run: champion, challenger and its share."""

    strategy: str
    champion: int
    challenger: int | None
    challenger_share: float
    generation: int


def actor_from_node(db_url: str, name: str) -> Actor:
    """The user ``name`` of a node database with their roles (meshmpc.platform accounts)."""
    from meshmpc.platform.models import User

    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(User.roles, User.disabled).where(User.name == name)).first()
    if row is None or row.disabled:
        raise MakerCheckerError(f"user {name!r} is not an active account of the node {db_url}")
    return Actor(name, frozenset(row.roles or []))


class StrategyStore:
    """Versions and the service state of every strategy in one database."""

    def __init__(self, engine: sa.Engine | str, audit: Any = None) -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self.audit = audit
        metadata.create_all(self.engine)

    def propose(self, strategy: str, text: str | bytes, author: Actor, note: str = "") -> int:
        """Validate and store a new draft version; its number."""
        _require(author, "strategy_editor", f"propose a version of strategy {strategy}")
        validate(strategy, text)
        doc = parse_document(strategy, text)
        with self.engine.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(versions_table.c.version))
                                .where(versions_table.c.strategy == strategy)).scalar()
            version = int(last or 0) + 1
            conn.execute(versions_table.insert().values(
                strategy=strategy, version=version, document=_text(text),
                sha256=document_hash(doc), author=author.name, created=time.time(),
                status="draft", note=note))
        return version

    def publish(self, strategy: str, version: int, approver: Actor,
                backtest: dict[str, Any] | None = None) -> ServiceState:
        """Make ``version`` the champion (maker-checker; one transaction; audited with the
        headline ``backtest`` figures when the approver ran one)."""
        row = self._version_row(strategy, version)
        self._check_approver(strategy, version, row, approver, "publish")
        validate(strategy, row.document)
        state = self._set_service(strategy, champion=version, approver=approver)
        self._audit("strategy.publish", approver, strategy, version, row, state, backtest)
        return state

    def rollback(self, strategy: str, version: int, approver: Actor) -> ServiceState:
        """Put an earlier published version back into service."""
        row = self._version_row(strategy, version)
        if row.published is None:
            raise MakerCheckerError(f"strategy {strategy} v{version} was never published; "
                                    "publish it instead of rolling back to it")
        _require(approver, "approver", f"roll strategy {strategy} back")
        state = self._set_service(strategy, champion=version, approver=approver)
        self._audit("strategy.rollback", approver, strategy, version, row, state)
        return state

    def challenge(self, strategy: str, version: int, share: float, approver: Actor
                  ) -> ServiceState:
        """Run ``version`` on ``share`` (0..1) of the traffic, split by applicant-key hash."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"strategy {strategy}: challenger share {share} is not in 0..1")
        row = self._version_row(strategy, version)
        self._check_approver(strategy, version, row, approver, "start a challenger of")
        state = self._set_service(strategy, challenger=version, share=share, approver=approver)
        self._audit("strategy.challenge", approver, strategy, version, row, state)
        return state

    def _check_approver(self, strategy: str, version: int, row: Any, approver: Actor,
                        what: str) -> None:
        _require(approver, "approver", f"{what} strategy {strategy} v{version}")
        if approver.name == row.author:
            raise MakerCheckerError(f"strategy {strategy} v{version}: {approver.name} wrote "
                                    "this version and may not approve it (maker-checker: "
                                    "a second person with the approver role must)")

    def _set_service(self, strategy: str, approver: Actor, champion: int | None = None,
                     challenger: int | None = None, share: float = 0.0) -> ServiceState:
        now = time.time()
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(service_table).where(
                service_table.c.strategy == strategy).with_for_update()).first()
            if champion is not None:
                conn.execute(versions_table.update().where(
                    versions_table.c.strategy == strategy, versions_table.c.version == champion,
                    versions_table.c.published.is_(None)).values(published=now,
                                                                 approver=approver.name))
                conn.execute(versions_table.update().where(
                    versions_table.c.strategy == strategy,
                    versions_table.c.status == "published").values(status="retired"))
                conn.execute(versions_table.update().where(
                    versions_table.c.strategy == strategy,
                    versions_table.c.version == champion).values(status="published"))
            if current is None:
                if champion is None:
                    raise MakerCheckerError(f"strategy {strategy} has no version in service "
                                            "yet; publish a champion first")
                values = {"strategy": strategy, "champion": champion, "challenger": None,
                          "challenger_share": 0.0, "generation": 1, "updated": now}
                conn.execute(service_table.insert().values(**values))
            else:
                values = {"champion": champion if champion is not None else current.champion,
                          "challenger": challenger if champion is None else None,
                          "challenger_share": share if champion is None else 0.0,
                          "generation": current.generation + 1, "updated": now}
                conn.execute(service_table.update().where(
                    service_table.c.strategy == strategy).values(**values))
        state = self.service_state(strategy)
        assert state is not None
        return state

    def _audit(self, kind: str, approver: Actor, strategy: str, version: int, row: Any,
               state: ServiceState, backtest: dict[str, Any] | None = None) -> None:
        if self.audit is not None:
            detail = {"strategy": strategy, "version": version, "sha256": row.sha256,
                      "author": row.author, "generation": state.generation,
                      "champion": state.champion, "challenger": state.challenger,
                      "challenger_share": state.challenger_share}
            if backtest is not None:
                detail["backtest"] = backtest
            self.audit.append(kind, approver.name, detail)

    def _version_row(self, strategy: str, version: int) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(versions_table).where(
                versions_table.c.strategy == strategy,
                versions_table.c.version == version)).first()
        if row is None:
            raise MeshMPCError(f"strategy {strategy} has no version {version}")
        return row

    def service_state(self, strategy: str) -> ServiceState | None:
        """The champion / challenger in service (None before the first publication)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(service_table).where(
                service_table.c.strategy == strategy)).first()
        if row is None:
            return None
        return ServiceState(strategy, int(row.champion), row.challenger,
                            float(row.challenger_share), int(row.generation))

    def generation(self, strategy: str) -> int:
        """The service row's change counter (0 before the first publication); a cheap poll."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(service_table.c.generation).where(
                service_table.c.strategy == strategy)).scalar()
        return int(value or 0)

    def compiled(self, strategy: str, version: int) -> CompiledStrategy:
        """A stored version, compiled."""
        row = self._version_row(strategy, version)
        return CompiledStrategy(strategy, version, parse_document(strategy, row.document))

    def versions(self, strategy: str | None = None) -> list[dict[str, Any]]:
        """Every version (newest last) without its document."""
        query = sa.select(*[c for c in versions_table.c if c.name != "document"])
        if strategy is not None:
            query = query.where(versions_table.c.strategy == strategy)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(versions_table.c.strategy,
                                               versions_table.c.version)).all()
        return [dict(r._mapping) for r in rows]


def _require(actor: Actor, role: str, what: str) -> None:
    if role not in actor.roles:
        raise MakerCheckerError(f"{actor.name} (roles: {', '.join(sorted(actor.roles)) or 'none'})"
                                f" may not {what}: it needs the {role} role")


def _text(text: str | bytes) -> str:
    return text.decode() if isinstance(text, bytes) else text
