"""Alembic, driven from code: `pmteam db upgrade` and the start of `pmteam run`.

Several processes may migrate one database at once: replicas started together, or `pmteam db
upgrade` beside a running `pmteam run`. `upgrade` takes a lock for the whole migration, so one
process migrates and the others wait for it, then find the schema at the revision asked for
and do nothing. On PostgreSQL the lock is a session-level advisory lock, held on a connection
of its own while Alembic migrates on another; on SQLite it is a file lock on
`<database>.migrate.lock`, beside the database file (an in-memory database needs none).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import unquote, urlsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from storage.db import sync_url

if sys.platform != "win32":
    import fcntl  # POSIX file locks; on Windows a SQLite migration goes without the lock

MIGRATIONS = Path(__file__).parent / "migrations"
# The advisory lock's key: a fixed signed 64-bit number derived from "pmteam-migrate". Advisory
# locks belong to one database, so this serialises the migrations of that database only.
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"pmteam-migrate").digest()[:8], "big", signed=True
)
LOCK_FILE_SUFFIX = ".migrate.lock"

log = logging.getLogger(__name__)


def alembic_config(database_url: str | URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute rather than an ini option so '%' in passwords needs no escaping.
    config.attributes["database_url"] = sync_url(database_url)
    return config


def upgrade(database_url: str | URL, revision: str = "head") -> None:
    """Bring the schema up to `revision` (blocking; run it in a thread from async code).

    Holds the migration lock throughout: a process that finds another one migrating waits for
    it, and then has nothing left to do."""
    url = sync_url(database_url)
    with migration_lock(url):
        command.upgrade(alembic_config(url), revision)


@contextmanager
def migration_lock(database_url: str | URL) -> Iterator[None]:
    """Held by one process at a time per database, waiting as long as another holds it."""
    url = sync_url(database_url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        with _postgres_lock(url):
            yield
    elif backend == "sqlite":
        with _sqlite_lock(url):
            yield
    else:
        yield


@contextmanager
def _postgres_lock(url: URL) -> Iterator[None]:
    # A connection of its own, in autocommit so it holds the lock without holding a
    # transaction open; the lock goes with the connection if this process dies.
    engine = create_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    key = {"key": MIGRATION_LOCK_KEY}
    try:
        with engine.connect() as connection:
            took = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar()
            if not took:
                waiting = _waiting(url.render_as_string(hide_password=True))
                connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
                _waited(waiting)
            try:
                yield
            finally:
                # Closing the connection would release it too; this only makes it prompt.
                with suppress(SQLAlchemyError):
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    finally:
        engine.dispose()


@contextmanager
def _sqlite_lock(url: URL) -> Iterator[None]:
    database = _sqlite_file(url)
    if database is None or sys.platform == "win32":
        yield
        return
    lock_path = database.with_name(database.name + LOCK_FILE_SUFFIX)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        # The database's directory is missing or read-only: SQLite will fail on the database
        # itself and say so, which is the message to show, so go on without the lock.
        log.warning(
            "cannot create the migration lock file %s (%s); migrating without it",
            lock_path,
            exc.strerror or type(exc).__name__,
        )
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting = _waiting(str(database))
            fcntl.flock(fd, fcntl.LOCK_EX)
            _waited(waiting)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        # The file stays: removing it could let a process that opened it already lock a file
        # no one else will see.
        os.close(fd)


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    if url.query.get("uri") in ("true", "1") and database.startswith("file:"):
        path = unquote(urlsplit(database).path)
        return Path(path) if path and path != ":memory:" else None
    return Path(database)


def _waiting(database: str) -> float:
    log.info("another process is migrating the database %s; waiting for it to finish", database)
    return time.monotonic()


def _waited(since: float) -> None:
    log.info(
        "the other process's migration is over after %.1f s; checking the schema",
        time.monotonic() - since,
    )


def current_revision(database_url: str | URL) -> str | None:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def declared_by_the_models(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name` for comparing a database with the models: everything but the
    task search of migration 0008, which no model declares (PostgreSQL's expression index;
    SQLite's FTS5 table and the tables FTS5 keeps beside it)."""
    if type_ == "index":
        return name != "ix_task_search"
    if type_ == "table":
        return name is None or not (name == "task_fts" or name.startswith("task_fts_"))
    return True
