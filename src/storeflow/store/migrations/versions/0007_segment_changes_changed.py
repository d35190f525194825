"""segment_changes.changed: what changed for the queued profile (the keys segment conditions read),
so the membership engine evaluates only the segments that read one of them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("segment_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("segment_changes", schema=None) as batch_op:
        batch_op.drop_column("changed")
