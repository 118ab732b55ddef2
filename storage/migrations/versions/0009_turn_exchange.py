"""turn exchange

`turn.exchange` keeps what the engineer was sent in a turn, from its request to the last tool
result (the research findings as it read them), in the API's message form. A follow-up in the
same thread renders the earlier turn from it, byte for byte, so the follow-up keeps the earlier
research and reads that part of its prompt from the cache. NULL for turns before this
revision and for turns that ended without an answer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("turn", sa.Column("exchange", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turn") as batch:
        batch.drop_column("exchange")
