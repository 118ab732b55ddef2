"""task search

A full-text index over each task's title and request, for the engineer's `find_related_tasks`
(storage.queries.search_tasks ranks tasks by how many of the query's words they match).

PostgreSQL: a GIN index on the same `to_tsvector` expression the query matches against. It uses
the 'english' configuration, so "indexes" finds "index" and "paginated" finds "pagination";
'simple' would only find the exact word. (English stop words, "about" or "after", are not
indexed and so never match; SQLite's Porter tokenizer keeps them.)

SQLite: `task_fts`, an FTS5 table whose content is the `task` table itself (external content:
the text is stored once), kept in step by triggers on `task`, with the Porter stemmer for the
same reason. A SQLite built without FTS5 gets no table: the search then falls back to LIKE,
unstemmed. (The reverse, a database migrated here and then opened by a SQLite without FTS5,
could not write tasks: the triggers need the module.) On SQLite a later batch migration that
rebuilds `task` drops these triggers (as it would 0002's) and must make them again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.exc import OperationalError


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# storage.queries.TASK_DOCUMENT spells the same expression: PostgreSQL uses the index only for
# the expression it was built on. `translate` makes '.', '_', '-' and '/' spaces, so that
# "orders.created_at" or "/orders/{id}" hold the word "orders" (PostgreSQL's parser would keep
# "orders.created" and "/orders" whole), as SQLite's tokenizer does.
POSTGRES_INDEX = """CREATE INDEX ix_task_search ON task USING gin (
    to_tsvector(
        'english',
        translate(coalesce(title, '') || ' ' || coalesce(request_text, ''), '._-/', '    ')
    )
)"""

SQLITE_TABLE = """CREATE VIRTUAL TABLE task_fts USING fts5(
    title, request_text, content='task', content_rowid='id', tokenize='porter unicode61'
)"""

SQLITE_TRIGGERS = [
    """CREATE TRIGGER task_fts_insert AFTER INSERT ON task BEGIN
        INSERT INTO task_fts (rowid, title, request_text)
        VALUES (NEW.id, NEW.title, NEW.request_text);
    END""",
    # Status changes, the most frequent update, leave the index alone.
    """CREATE TRIGGER task_fts_update AFTER UPDATE OF title, request_text ON task BEGIN
        INSERT INTO task_fts (task_fts, rowid, title, request_text)
        VALUES ('delete', OLD.id, OLD.title, OLD.request_text);
        INSERT INTO task_fts (rowid, title, request_text)
        VALUES (NEW.id, NEW.title, NEW.request_text);
    END""",
    """CREATE TRIGGER task_fts_delete AFTER DELETE ON task BEGIN
        INSERT INTO task_fts (task_fts, rowid, title, request_text)
        VALUES ('delete', OLD.id, OLD.title, OLD.request_text);
    END""",
]


def _sqlite_has_fts5() -> bool:
    bind = op.get_bind()
    try:
        bind.exec_driver_sql("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
    except OperationalError:  # "no such module: fts5"
        return False
    bind.exec_driver_sql("DROP TABLE temp.fts5_probe")
    return True


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_INDEX)
    elif _sqlite_has_fts5():
        op.execute(SQLITE_TABLE)
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
        # The tasks stored before: 'rebuild' reads every row of the content table.
        op.execute("INSERT INTO task_fts (task_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_task_search")
    else:
        for name in ("task_fts_insert", "task_fts_update", "task_fts_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS task_fts")
