"""cards, privacy, stop and feedback

`task.visibility` keeps a task asked in private (a DM, the assistant pane, a private channel)
to its requester until they share it; `report.kind` tells a report of backend work (the PM's
card) from a conversational reply's; `turn.stop_requested_by` carries a Stop press to the
worker running the turn; `feedback` keeps each person's 👍/👎 per answer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "task",
        sa.Column("visibility", sa.String(16), nullable=False, server_default="channel"),
    )
    op.add_column(
        "report",
        sa.Column("kind", sa.String(16), nullable=False, server_default="backend_work"),
    )
    op.add_column("turn", sa.Column("stop_requested_by", sa.String(32), nullable=True))
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["turn_id"], ["turn.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("turn_id", "user_id", name="uq_feedback_turn_user"),
    )
    op.create_index("ix_feedback_created", "feedback", ["created_at"])
    op.create_index("ix_feedback_task", "feedback", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_task", table_name="feedback")
    op.drop_index("ix_feedback_created", table_name="feedback")
    op.drop_table("feedback")
    with op.batch_alter_table("turn") as batch:
        batch.drop_column("stop_requested_by")
    with op.batch_alter_table("report") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("visibility")
