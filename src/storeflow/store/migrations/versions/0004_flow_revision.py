"""flow_revision: a monotonic counter of flow changes, for the flow caches of every process;
outbox.event_pending: a sent message whose message_sent event is still to be stored

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'flow_revision',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('revision', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_revision')),
    )
    # Start past zero so that a cache that has never read a revision always reloads.
    op.execute(sa.text("INSERT INTO flow_revision (id, revision) VALUES (1, 1)"))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_pending', sa.Boolean(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_event_pending'), ['event_pending'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_event_pending'))
        batch_op.drop_column('event_pending')
    op.drop_table('flow_revision')
