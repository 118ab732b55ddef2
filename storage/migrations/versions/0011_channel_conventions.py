"""channel conventions, turn files

`channel_convention` keeps a channel's standing context for the engineer (`/pm conventions
set`): one row per (team, channel), with who wrote it last and when. `turn.files` lists the
files shared with a request (id, name, type, size, download URL), downloaded when the turn is
worked.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_convention",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", name="uq_channel_convention"),
    )
    op.add_column("turn", sa.Column("files", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turn") as batch:
        batch.drop_column("files")
    op.drop_table("channel_convention")
