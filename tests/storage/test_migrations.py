"""Migrations build exactly the models' schema, and the engines are set up as documented."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    create_engine,
    normalise_url,
    session_factory,
    sync_url,
)
from storage.migrate import (
    alembic_config,
    current_revision,
    declared_by_the_models,
    head_revision,
    upgrade,
)
from storage.models import Task
from storage.queries import search_tasks
from tests.conftest import IN_CI, POSTGRES_ADMIN_URL, _postgres_unavailable
from tests.storage.support import ask, count


def schema_differences(database_url: str) -> list[object]:
    engine = sqlalchemy.create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "include_name": declared_by_the_models},
            )
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    assert schema_differences(database_url) == []


def test_migrated_database_is_at_head(database_url: str) -> None:
    head = head_revision()

    assert head is not None
    assert current_revision(database_url) == head


def test_fresh_database_migrates_from_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert current_revision(url) is None

    upgrade(url)

    assert current_revision(url) == head_revision()
    assert schema_differences(url) == []


def test_one_running_turn_per_task_index_is_in_the_migrated_schema(database_url: str) -> None:
    engine = sqlalchemy.create_engine(sync_url(database_url))
    try:
        indexes = {index["name"]: index for index in inspect(engine).get_indexes("turn")}
    finally:
        engine.dispose()

    one_running = indexes["uq_turn_one_running_per_task"]
    assert one_running["unique"]
    assert one_running["column_names"] == ["task_id"]


async def test_upgrade_again_is_a_no_op(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await ask(session)

        for _ in range(2):
            await asyncio.to_thread(upgrade, database_url)

        assert current_revision(database_url) == head_revision()
        assert await count(sessions, Task) == 1
    finally:
        await engine.dispose()
    assert schema_differences(database_url) == []


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        # Two connections checked out at once: the pragmas are set on every new connection.
        # Each read ends its transaction, since every transaction takes the write lock.
        async with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
                busy = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
                keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
                await connection.commit()
                assert (journal, busy, keys) == ("wal", SQLITE_BUSY_TIMEOUT_MS, 1)
    finally:
        await engine.dispose()


async def test_sqlite_refuses_rows_that_point_nowhere(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(sqlalchemy.exc.IntegrityError, match="FOREIGN KEY"):
                await connection.execute(
                    text(
                        "INSERT INTO task_event (task_id, kind, actor, created_at)"
                        " VALUES (404, 'status', 'U1', '2026-03-02 09:00:00')"
                    )
                )
    finally:
        await engine.dispose()


async def test_session_factory_keeps_objects_usable_after_commit(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with session_factory(engine)() as session:
            assert isinstance(session, AsyncSession)
            intake = await ask(session)
            # expire_on_commit=False: reading attributes after the commit needs no new query.
            assert intake.task.title == "Design the orders API"
            assert not session.in_transaction()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("written", "async_driver", "sync_driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ("sqlite:///./pmteam.db", "sqlite+aiosqlite", "sqlite+pysqlite"),
        ("sqlite+aiosqlite:///./pmteam.db", "sqlite+aiosqlite", "sqlite+pysqlite"),
    ],
)
def test_urls_people_write_get_the_right_drivers(
    written: str, async_driver: str, sync_driver: str
) -> None:
    assert normalise_url(written).drivername == async_driver
    assert sync_url(written).drivername == sync_driver
    assert sync_url(written).database == normalise_url(written).database


def test_text_stored_escaped_before_0003_is_decoded_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO task (id, team_id, channel_id, thread_ts, requester_id, title, "
                    "request_text, status, created_at, updated_at) VALUES (1, 'T1', 'C1', '1.1', "
                    "'U1', :title, :title, 'queued', '2026-12-01 10:00:00', "
                    "'2026-12-01 10:00:00')"
                ),
                # As Slack sent it: ">50k & <@U0BOB>, and a literal &gt; typed by a person".
                {"title": "&gt;50k &amp; <@U0BOB>, and a literal &amp;gt; typed by a person"},
            )
        upgrade(url)
        with engine.connect() as connection:
            title, request = connection.execute(text("SELECT title, request_text FROM task")).one()
    finally:
        engine.dispose()

    assert title == request == ">50k & <@U0BOB>, and a literal &gt; typed by a person"


@pytest.fixture(params=["sqlite", "postgres"])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database of each kind, with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    problem = _postgres_unavailable()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; CI must run the PostgreSQL tests")
        pytest.skip(f"{problem}; set PMTEAM_TEST_POSTGRES_URL to run these tests")
    name = f"pmteam_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def store_task(url: str, task_id: int, words: str) -> None:
    """A task row written straight into the database, whatever revision its schema is at."""
    engine = sqlalchemy.create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO task (id, team_id, channel_id, thread_ts, requester_id, title, "
                    "request_text, status, visibility, report_attempts, created_at, updated_at) "
                    "VALUES (:id, 'T1', 'C1', :thread, 'U1', :title, :request, 'queued', "
                    "'channel', 0, '2026-12-01 10:00:00', '2026-12-01 10:00:00')"
                ),
                {"id": task_id, "thread": f"{task_id}.0", "title": words, "request": words},
            )
    finally:
        engine.dispose()


async def found_by_search(url: str, query: str) -> list[int | None]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return [row.task.id for row in await search_tasks(session=session, query=query)]
    finally:
        await engine.dispose()


def search_objects(url: str) -> set[str]:
    """Migration 0008's search index, as far as it is in the database."""
    engine = sqlalchemy.create_engine(sync_url(url))
    try:
        schema = inspect(engine)
        names = {name for name in schema.get_table_names() if name.startswith("task_fts")}
        names |= {str(index["name"]) for index in schema.get_indexes("task")}
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                triggers = connection.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                )
                names |= {name for (name,) in triggers}
        return {name for name in names if name.startswith(("task_fts", "ix_task_search"))}
    finally:
        engine.dispose()


async def test_task_search_index_covers_older_tasks_and_goes_with_a_downgrade(
    unmigrated_url: str,
) -> None:
    url = unmigrated_url
    await asyncio.to_thread(upgrade, url, "0007")
    store_task(url, 1, "Orders API with cursor pagination")

    await asyncio.to_thread(upgrade, url)
    backfilled = await found_by_search(url, "pagination")
    made = search_objects(url)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0007")
    left = search_objects(url)
    store_task(url, 2, "Export orders")  # no trigger left behind that writes to a dropped table
    await asyncio.to_thread(upgrade, url)

    assert backfilled == [1]
    assert made in (
        {"ix_task_search"},
        {"task_fts", "task_fts_config", "task_fts_data", "task_fts_docsize", "task_fts_idx"}
        | {"task_fts_insert", "task_fts_update", "task_fts_delete"},
    )
    assert left == set()
    assert await found_by_search(url, "orders") == [2, 1]
