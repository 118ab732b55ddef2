"""plain text: what people wrote is stored as they typed it

Until now intake stored a message's text as Slack sends it, with `&`, `<` and `>` escaped as
`&amp;`, `&lt;` and `&gt;`, and every surface escaped it again (a request with `>50k` showed
as `&gt;50k`). Intake now decodes once; this decodes the rows stored before. Slack's own
markup (`<@U123>`, `<!here>`) was never escaped and is left as it is.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns intake fills from a Slack message's text.
COLUMNS = [("task", "title"), ("task", "request_text"), ("turn", "text")]


def _decoded(column: str) -> str:
    # `&amp;` last: `&amp;gt;` (a person typing "&gt;") must come out as "&gt;", not ">".
    return f"REPLACE(REPLACE(REPLACE({column}, '&lt;', '<'), '&gt;', '>'), '&amp;', '&')"


def upgrade() -> None:
    for table, column in COLUMNS:
        op.execute(f"UPDATE {table} SET {column} = {_decoded(column)} WHERE {column} LIKE '%&%'")


def downgrade() -> None:
    # Escaping again would also escape text stored after the upgrade, which was never escaped.
    pass
