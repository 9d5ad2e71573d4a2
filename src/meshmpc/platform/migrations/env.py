"""Alembic environment for the node database: runs against the engine the node hands over."""

from __future__ import annotations

from alembic import context

from meshmpc.platform.models import Base

engine = context.config.attributes["connection_engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
