"""message records, suppressions, meta

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storeflow.store.tables

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_meta'))
    )
    op.create_table('suppressions',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', storeflow.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel', 'address', name=op.f('pk_suppressions'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flow_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('flow_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('profile_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('address', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('provider_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('segments', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', storeflow.store.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('opened_at', storeflow.store.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('clicked_at', storeflow.store.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_profile_id'), ['profile_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_provider_id'), ['provider_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_provider_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_profile_id'))
        batch_op.drop_column('clicked_at')
        batch_op.drop_column('opened_at')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('segments')
        batch_op.drop_column('provider_id')
        batch_op.drop_column('address')
        batch_op.drop_column('kind')
        batch_op.drop_column('profile_id')
        batch_op.drop_column('flow_version')
        batch_op.drop_column('flow_id')

    op.drop_table('suppressions')
    op.drop_table('meta')
