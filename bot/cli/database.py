"""What the database behind PMTEAM_DATABASE_URL is, looked at without creating or changing it."""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL, make_url

from bot.config import SQLITE_DRIVERS, display_database_url

NEW_DATABASE = (
    "the database will be created and migrated by `pmteam run` (or run `pmteam db upgrade`)"
)
_POSTGRES_TABLES = (
    "SELECT count(*) FROM information_schema.tables "
    "WHERE table_schema = %s AND table_name <> 'alembic_version'"
)


@dataclass(frozen=True)
class Migrations:
    """The code's migrations: the revision it expects, and every revision it knows."""

    head: str | None
    known: frozenset[str]


@dataclass(frozen=True)
class DatabaseState:
    """`problem` says why pmteam can't use the database, with the fix. Otherwise the database
    is `new` (no file yet, or no tables: `pmteam run` creates and migrates it) or holds the
    schema at `revision`."""

    shown: str
    problem: str | None = None
    new: bool = False
    revision: str | None = None

    def schema_problem(self, migrations: Migrations) -> str | None:
        """Why this code can't use the schema as it is, with the fix; None when it can (an
        older revision is migrated by `pmteam run` on start)."""
        if self.revision is None or self.revision in migrations.known:
            return None
        return (
            f"the schema is at revision {self.revision}, which this pmteam doesn't know: a "
            "newer pmteam migrated it; upgrade pmteam, or point PMTEAM_DATABASE_URL elsewhere"
        )

    def up_to_date(self, migrations: Migrations) -> bool:
        return self.revision is not None and self.revision == migrations.head


async def probe_database(url: str, *, timeout: float) -> DatabaseState:
    """Look at the database within `timeout` seconds; this never creates a file or a table."""
    shown = display_database_url(url)
    parsed = make_url(url)
    try:
        async with asyncio.timeout(timeout):
            if parsed.drivername in SQLITE_DRIVERS:
                return await asyncio.to_thread(_probe_sqlite, parsed, shown)
            return await _probe_postgres(parsed, shown, timeout=timeout)
    except TimeoutError:
        return DatabaseState(
            shown,
            problem=f"no answer within {timeout:g} s; check PMTEAM_DATABASE_URL and that the "
            "server is running and reachable",
        )


def _probe_sqlite(url: URL, shown: str) -> DatabaseState:
    if not url.database or url.database == ":memory:":
        return DatabaseState(shown, new=True)
    path = Path(url.database)
    directory = path.absolute().parent
    if not path.exists():
        if not directory.is_dir():
            return DatabaseState(
                shown,
                problem=f"the directory {directory} does not exist; create it, or point "
                "PMTEAM_DATABASE_URL at a file in a directory that does",
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            return DatabaseState(
                shown,
                problem=f"the directory {directory} is not writable by this user, so the "
                "database can't be created there; point PMTEAM_DATABASE_URL at a writable "
                "place (in a container, a mounted volume such as /data)",
            )
        return DatabaseState(shown, new=True)
    if not path.is_file():
        return DatabaseState(
            shown, problem=f"{path} is not a file; point PMTEAM_DATABASE_URL at a database file"
        )
    # SQLite writes its -wal and -shm files next to the database: both must be writable.
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(directory, os.W_OK | os.X_OK):
        return DatabaseState(
            shown,
            problem=f"{path} or its directory is not writable by this user; fix the "
            "permissions or point PMTEAM_DATABASE_URL elsewhere",
        )
    try:
        tables, revision = _read_sqlite(path)
    except sqlite3.Error as exc:
        return DatabaseState(
            shown,
            problem=f"cannot read {path} ({exc}); point PMTEAM_DATABASE_URL at a pmteam "
            "database, or move the file away to start a new one",
        )
    return _state(shown, tables=tables, revision=revision)


def _read_sqlite(path: Path) -> tuple[int, str | None]:
    # With no -wal file beside it nobody has the database open, and `immutable` reads it
    # without creating one; with a -wal file, a read-only connection sees what is in it too.
    live = Path(f"{path}-wal").exists()
    options = "mode=ro" if live else "mode=ro&immutable=1"
    connection = sqlite3.connect(f"file:{quote(str(path.absolute()))}?{options}", uri=True)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        names = {str(row[0]) for row in connection.execute(query)}
        revision = None
        if "alembic_version" in names:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = str(row[0]) if row else None
        return len(names - {"alembic_version"}), revision
    finally:
        connection.close()


async def _probe_postgres(url: URL, shown: str, *, timeout: float) -> DatabaseState:
    params: dict[str, str | int] = {
        key: value for key, value in url.query.items() if isinstance(value, str)
    }
    for key, value in (
        ("host", url.host),
        ("port", url.port),
        ("user", url.username),
        ("password", url.password),
        ("dbname", url.database),
    ):
        if value is not None:
            params[key] = value
    params["connect_timeout"] = max(1, math.ceil(timeout))
    try:
        connection = await psycopg.AsyncConnection.connect(
            make_conninfo("", **params), autocommit=True
        )
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return DatabaseState(
            shown,
            problem=f"cannot connect ({first}); check PMTEAM_DATABASE_URL and that the server "
            "is running",
        )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT current_schema()")
            schema_row = await cursor.fetchone()
            schema = str(schema_row[0]) if schema_row else "public"
            await cursor.execute(_POSTGRES_TABLES, (schema,))
            count_row = await cursor.fetchone()
            tables = int(count_row[0]) if count_row else 0
            revision = None
            await cursor.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            exists = await cursor.fetchone()
            if exists and exists[0]:
                await cursor.execute("SELECT version_num FROM alembic_version")
                row = await cursor.fetchone()
                revision = str(row[0]) if row else None
    except psycopg.Error as exc:
        return DatabaseState(
            shown, problem=f"connected, but cannot read it ({type(exc).__name__}: {exc})"
        )
    finally:
        await connection.close()
    return _state(shown, tables=tables, revision=revision)


def _state(shown: str, *, tables: int, revision: str | None) -> DatabaseState:
    if revision is not None:
        return DatabaseState(shown, revision=revision)
    if tables == 0:
        return DatabaseState(shown, new=True)
    return DatabaseState(
        shown,
        problem="it holds tables but no pmteam schema revision; point PMTEAM_DATABASE_URL at "
        "an empty database or one pmteam created",
    )
