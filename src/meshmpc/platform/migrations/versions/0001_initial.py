"""The first node schema: users, sessions, peers, datasets, grants, lookups, jobs, models, consent.

Revision ID: 0001
Revises:

A frozen snapshot (generated once by Alembic from the models); later revisions
change it step by step, so upgrading an existing node never re-creates a table.
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('merkle_root', sa.String(length=64), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_batches_requester'), ['requester'],
                              unique=False)

    op.create_table('consent_refs',
    sa.Column('merkle_root', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('refs', sa.JSON(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('merkle_root')
    )
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('schema_path', sa.Text(), nullable=True),
    sa.Column('key', sa.String(length=128), nullable=True),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('row_count', sa.BigInteger(), nullable=True),
    sa.Column('quality', sa.JSON(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('jobs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('initiator', sa.String(length=64), nullable=False),
    sa.Column('spec', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('purpose', sa.String(length=64), nullable=True),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('started', sa.Float(), nullable=True),
    sa.Column('finished', sa.Float(), nullable=True),
    sa.Column('consent_count', sa.BigInteger(), nullable=True),
    sa.Column('consent_root', sa.String(length=64), nullable=True),
    sa.Column('expires', sa.Float(), nullable=True),
    sa.Column('purged', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('step', sa.String(length=64), nullable=True),
    sa.Column('lineage', sa.JSON(), nullable=False),
    sa.Column('holders', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('deployed', sa.Boolean(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_name'), ['name'], unique=False)

    op.create_table('peers',
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=256), nullable=False),
    sa.Column('api_url', sa.String(length=256), nullable=True),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('last_seen', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('throughput_mbps', sa.Float(), nullable=True),
    sa.Column('software_version', sa.String(length=32), nullable=True),
    sa.Column('protocol_version', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('party')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.Float(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.String(length=128), nullable=False),
    sa.Column('grantee', sa.String(length=64), nullable=False),
    sa.Column('components', sa.JSON(), nullable=False),
    sa.Column('initiators', sa.JSON(), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('expires', sa.Float(), nullable=True),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('max_lookups_per_day', sa.Integer(), nullable=True),
    sa.Column('max_lookups_total', sa.Integer(), nullable=True),
    sa.Column('lookups_total', sa.BigInteger(), nullable=False),
    sa.Column('auto_approve', sa.Boolean(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['dataset'], ['datasets.name'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_grantee'), ['grantee'], unique=False)

    op.create_table('job_parties',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('approval', sa.String(length=16), nullable=False),
    sa.Column('approver', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('job_id', 'party')
    )
    op.create_table('job_steps',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started', sa.Float(), nullable=True),
    sa.Column('finished', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('bytes_sent', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('job_id', 'party', 'step')
    )
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=True),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('last_used', sa.Float(), nullable=False),
    sa.Column('expires', sa.Float(), nullable=False),
    sa.Column('label', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_token_hash'), ['token_hash'], unique=True)

    op.create_table('lookup_days',
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], ),
    sa.PrimaryKeyConstraint('grant_id', 'day')
    )


def downgrade() -> None:
    op.drop_table('lookup_days')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_token_hash'))

    op.drop_table('sessions')
    op.drop_table('job_steps')
    op.drop_table('job_parties')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_grantee'))

    op.drop_table('grants')
    op.drop_table('users')
    op.drop_table('peers')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_name'))

    op.drop_table('model_versions')
    op.drop_table('jobs')
    op.drop_table('datasets')
    op.drop_table('consent_refs')
    with op.batch_alter_table('consent_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_batches_requester'))

    op.drop_table('consent_batches')
