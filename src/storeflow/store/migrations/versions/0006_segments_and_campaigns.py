"""segments, their versions, members, membership log, due flips and change queue; campaigns and
their frozen recipients; outbox.campaign_id and outbox.variant

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:38:41.780594
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from storeflow.store.tables import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_recipients",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "profile_id", name=op.f("pk_campaign_recipients")),
    )
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_recipients_campaign_id_status"), ["campaign_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_campaign_recipients_status_due_at"), ["status", "due_at"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "definition", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("send_at", UTCDateTime(), nullable=True),
        sa.Column("audience_size", sa.Integer(), nullable=True),
        sa.Column("frozen_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_status_send_at"), ["status", "send_at"], unique=False)

    op.create_table(
        "segment_changes",
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_segment_changes")),
    )
    op.create_table(
        "segment_due",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "profile_id", name=op.f("pk_segment_due")),
    )
    with op.batch_alter_table("segment_due", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_due_due_at"), ["due_at"], unique=False)

    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("entered_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "profile_id", name=op.f("pk_segment_members")),
    )
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_members_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "segment_membership_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("entered_at", UTCDateTime(), nullable=False),
        sa.Column("exited_at", UTCDateTime(), nullable=True),
        sa.Column("entered_by", sa.String(length=16), nullable=False),
        sa.Column("exited_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_membership_log")),
    )
    with op.batch_alter_table("segment_membership_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_membership_log_segment_id_entered_at"), ["segment_id", "entered_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_segment_membership_log_segment_id_profile_id"), ["segment_id", "profile_id"], unique=False
        )

    op.create_table(
        "segment_versions",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "definition", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "version", name=op.f("pk_segment_versions")),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("computed_version", sa.Integer(), nullable=True),
        sa.Column("computed_at", UTCDateTime(), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("variant", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_campaign_id"), ["campaign_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_campaign_id"))
        batch_op.drop_column("variant")
        batch_op.drop_column("campaign_id")

    op.drop_table("segments")
    op.drop_table("segment_versions")
    with op.batch_alter_table("segment_membership_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_membership_log_segment_id_profile_id"))
        batch_op.drop_index(batch_op.f("ix_segment_membership_log_segment_id_entered_at"))

    op.drop_table("segment_membership_log")
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_members_profile_id"))

    op.drop_table("segment_members")
    with op.batch_alter_table("segment_due", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_due_due_at"))

    op.drop_table("segment_due")
    op.drop_table("segment_changes")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_status_send_at"))

    op.drop_table("campaigns")
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_recipients_status_due_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_recipients_campaign_id_status"))

    op.drop_table("campaign_recipients")
