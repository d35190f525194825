"""date_trigger_fires and date_trigger_changes: each profile's next fire time per date flow, claimed
when due; schedules.backfill_after for the backfill of a date flow's fire times

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storeflow.store.tables import UTCDateTime

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'date_trigger_fires',
        sa.Column('flow_id', sa.String(length=64), nullable=False),
        sa.Column('profile_id', sa.String(length=64), nullable=False),
        sa.Column('next_fire_at', UTCDateTime(), nullable=False),
        sa.Column('occurrence_key', sa.String(length=32), nullable=False),
        sa.Column('last_occurrence', sa.String(length=32), nullable=True),
        sa.Column('last_outcome', sa.String(length=16), nullable=True),
        sa.Column('last_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('flow_id', 'profile_id', name=op.f('pk_date_trigger_fires')),
    )
    with op.batch_alter_table('date_trigger_fires', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_date_trigger_fires_next_fire_at'), ['next_fire_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_date_trigger_fires_profile_id'), ['profile_id'], unique=False)
    op.create_table(
        'date_trigger_changes',
        sa.Column('profile_id', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('profile_id', name=op.f('pk_date_trigger_changes')),
    )
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backfill_after', sa.String(length=64), nullable=True))
    # Date flows live before this migration were swept hourly: fill their fire times from the start.
    op.execute(sa.text("UPDATE schedules SET backfill_after = '' WHERE kind = 'date'"))


def downgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_column('backfill_after')
    op.drop_table('date_trigger_changes')
    with op.batch_alter_table('date_trigger_fires', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_date_trigger_fires_profile_id'))
        batch_op.drop_index(batch_op.f('ix_date_trigger_fires_next_fire_at'))
    op.drop_table('date_trigger_fires')
