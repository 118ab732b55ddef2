"""Async engine and session setup: SQLite (WAL) embedded, PostgreSQL (psycopg) to scale."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Engine, event, func
from sqlalchemy import create_engine as create_blocking_sa_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 15_000
# A replica's PostgreSQL connections at most: the session pool's 5 kept and 3 more for a burst
# (8; at work a replica was measured using 7-9 including the intake writer's 1). Ten replicas
# then hold at most 90, under PostgreSQL's default max_connections of 100 less its 3 reserved.
POOL_SIZE = 5
POOL_OVERFLOW = 3
# An execution option: how a connection's SQLite transaction begins (DEFERRED or IMMEDIATE).
SQLITE_BEGIN = "pmteam_sqlite_begin"


def normalise_url(url: str | URL) -> URL:
    """Pick the async driver for the URL people usually write (``postgresql://``, ``sqlite://``)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def sync_url(url: str | URL) -> URL:
    """The same database with a blocking driver, for Alembic."""
    parsed = normalise_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    return parsed  # psycopg 3 serves both sync and async


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed, **kwargs)
        install_sqlite_pragmas(engine.sync_engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    return create_async_engine(parsed, **kwargs)


def create_blocking_engine(
    url: str | URL, *, synced: bool = False, connections: int | None = None, **kwargs: Any
) -> Engine:
    """The same database through a blocking driver, for work that runs in a thread.

    `connections`: a PostgreSQL pool of exactly that many (a single writer thread needs one,
    and a pool that allows more only counts against the server's max_connections).

    `synced=True` (SQLite): a commit returns once the WAL is on disk (`synchronous=FULL`), so
    what it wrote survives a power cut or an OS crash, not only a crash of the process. A
    PostgreSQL commit is already that durable."""
    parsed = sync_url(url)
    if parsed.get_backend_name() != "sqlite":
        # A connection the server dropped (a restart, a failover, an idle timeout) is
        # replaced when it is taken from the pool, instead of failing the next commit.
        kwargs.setdefault("pool_pre_ping", True)
        if connections is not None:
            kwargs.update(pool_size=connections, max_overflow=0)
    engine = create_blocking_sa_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        install_sqlite_pragmas(engine, synced=synced)
    return engine


def install_sqlite_pragmas(sync_engine: Any, *, synced: bool = False) -> None:
    """WAL, a busy timeout and foreign keys; a transaction starts with BEGIN IMMEDIATE unless
    its connection asks for another kind (`SQLITE_BEGIN`; a read session asks for DEFERRED).

    A deferred SQLite transaction that reads and then writes can fail at once with
    SQLITE_BUSY when another connection wrote in between (the busy timeout does not help
    there). Taking the write lock at BEGIN makes every writer wait its turn instead; a
    transaction that only reads needs no lock and, in WAL mode, blocks no writer.
    """

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL: a commit survives a crash of the process, and the fsync waits for the
        # checkpoint; FULL: every commit waits for its own fsync.
        cursor.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        begin = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {begin}")


def dialect_name(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "sessions are always created bound to an engine"
    return bind.dialect.name


async def db_now(session: AsyncSession) -> datetime:
    """The database server's clock, in UTC: what leases are set and compared by, so that
    replicas on hosts whose clocks disagree still agree on when a lease ran out. SQLite lives
    in this process, so its clock is this host's."""
    if dialect_name(session) != "postgresql":
        return datetime.now(UTC)
    found: datetime = (await session.exec(select(func.clock_timestamp()))).one()
    return found.astimezone(UTC)


def insert(session: AsyncSession, model: type[SQLModel]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the session's dialect, for its ON CONFLICT clause (both spell it alike):
    a get-then-insert would race another transaction inserting the same key."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


class Session(AsyncSession):
    """A session whose explicit transaction is a write and whose implicit one is a read.

    `async with sessions.begin() as session:` is a use case that writes: it commits on exit,
    rolls back on an error, and on SQLite holds the write lock from BEGIN (IMMEDIATE).
    `async with sessions() as session:` only reads: its transaction begins when the first
    query needs one, DEFERRED on SQLite, and ends with the session, uncommitted.
    """

    def begin(self) -> AsyncSessionTransaction:
        return _WriteTransaction(self)


class _WriteTransaction(AsyncSessionTransaction):
    async def start(self, is_ctxmanager: bool = False) -> Self:
        await super().start(is_ctxmanager)
        # Connect now, so BEGIN IMMEDIATE waits for the lock here rather than at whichever
        # statement happens to come first.
        await self.session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
        return self


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    reads = engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
    return async_sessionmaker(reads, class_=Session, expire_on_commit=False)
