"""unposted reports

A task whose card could not be posted to the coordination channel (the bot not invited, the
channel gone, Slack down) keeps why in `task.report_error` and is tried again by housekeeping
at `task.report_retry_at`, backing off with `task.report_attempts`. The answer was delivered;
the task is not failed for it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task", sa.Column("report_error", sa.String(200), nullable=True))
    op.add_column(
        "task", sa.Column("report_retry_at", storage.types.UTCDateTime(), nullable=True)
    )
    op.add_column(
        "task",
        sa.Column("report_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_task_report_retry", "task", ["report_retry_at"])


def downgrade() -> None:
    op.drop_index("ix_task_report_retry", table_name="task")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("report_attempts")
        batch.drop_column("report_retry_at")
        batch.drop_column("report_error")
