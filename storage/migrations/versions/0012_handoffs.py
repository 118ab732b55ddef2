"""handoffs

`handoff` tracks what a report says other people must do (its `needed_from_others` and
`infrastructure_blocker` items): one row per item of a stored report (unique on the report and
the item's position, so a retried turn adds none), with its owner (a person, a user group or
nobody yet), its state (open, done, declined with a reason), who decided it, when its owner was
reminded, and where the owner's DM about it is.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(32), nullable=True),
        sa.Column("nudged_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("dm_channel", sa.String(32), nullable=True),
        sa.Column("dm_ts", sa.String(32), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["turn_id"], ["turn.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "position", name="uq_handoff_report_position"),
    )
    op.create_index("ix_handoff_task", "handoff", ["task_id", "id"])
    op.create_index("ix_handoff_owner_status", "handoff", ["owner_id", "status"])
    op.create_index("ix_handoff_status_created", "handoff", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_handoff_status_created", table_name="handoff")
    op.drop_index("ix_handoff_owner_status", table_name="handoff")
    op.drop_index("ix_handoff_task", table_name="handoff")
    op.drop_table("handoff")
