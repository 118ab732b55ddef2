"""Migrations build exactly the models' schema, and the engines are set up as documented."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy
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
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import Task
from tests.storage.support import ask, count


def schema_differences(database_url: str) -> list[object]:
    engine = sqlalchemy.create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
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
