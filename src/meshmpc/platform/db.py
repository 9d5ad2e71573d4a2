"""The node's database: an engine (SQLite in WAL mode by default, PostgreSQL by URL) and migrations.

``NodeDatabase("sqlite:///node/node.db").upgrade()`` creates or upgrades every
table through Alembic (migrations ship inside the package, so an installed
node upgrades itself at start-up); the audit tables and their append-only
triggers are created by :class:`meshmpc.platform.audit.AuditLog`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from meshmpc.errors import ConfigError
from meshmpc.platform.readcache import TableVersions

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0002"
"""The newest migration; a database already there skips Alembic at start-up (tested equal)."""


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith(("postgresql", "postgres")):
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return sa.create_engine(url, pool_pre_ping=True)
    raise ConfigError(url, "db", "use sqlite:///PATH (default) or postgresql://USER@HOST/DB")


class NodeDatabase:
    """The engine, the session factory and the migration runner of one node."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.versions = TableVersions(self.engine)

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent, fast when already there)."""
        if self.current_revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection_engine"] = self.engine
        command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[OrmSession]:
        """A transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session
