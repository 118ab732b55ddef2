"""tool call

`tool_call` records each call the engineer makes of a team tool (a tool of an MCP server in
PMTEAM_MCP_SERVERS): the server, the tool and its arguments, whether it writes and, if so, who
approved or denied it and when, how long it ran and how it ended. `/pm status T-n` shows them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tool_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(32), nullable=False),
        sa.Column("tool", sa.String(128), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("writes", sa.Boolean(), nullable=False),
        sa.Column("approval", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(32), nullable=True),
        sa.Column("decided_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("started_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(300), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["turn_id"], ["turn.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tool_call_task", "tool_call", ["task_id", "id"])
    op.create_index("ix_tool_call_turn", "tool_call", ["turn_id"])


def downgrade() -> None:
    op.drop_index("ix_tool_call_turn", table_name="tool_call")
    op.drop_index("ix_tool_call_task", table_name="tool_call")
    op.drop_table("tool_call")
