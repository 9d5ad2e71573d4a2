"""Peers' rotated-out and revoked identity keys.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('peer_keys',
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('valid_until', sa.Float(), nullable=True),
    sa.Column('recorded', sa.Float(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('party', 'public_key')
    )


def downgrade() -> None:
    op.drop_table('peer_keys')
