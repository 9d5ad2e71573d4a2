"""The first node schema: users, sessions, peers, datasets, grants, lookups, jobs, models.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from meshmpc.platform.models import Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first revision creates the tables as the models define them; later
    # revisions alter them step by step with op.add_column / op.alter_column.
    Base.metadata.create_all(op.get_bind())


def downgrade() -> None:
    Base.metadata.drop_all(op.get_bind())
