"""rate limit

`rate_event` counts the new turns each person started, in the database so that the per-person
limit (PMTEAM_RATE_LIMIT_PER_USER) holds across replicas. One row per Slack message (team,
channel, ts): a retry, or the app_mention + message double delivery, counts once. A person's
rows older than the window are pruned when they next write.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("message_ts", sa.String(32), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "team_id", "channel_id", "message_ts", name="uq_rate_event_message"
        ),
    )
    op.create_index("ix_rate_event_user", "rate_event", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_event_user", table_name="rate_event")
    op.drop_table("rate_event")
