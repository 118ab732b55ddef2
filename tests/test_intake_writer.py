"""The intake writer: group commit on the ack path, each message durable before its ack."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.intake import IntakeWriter, WriterClosed
from storage.db import create_engine
from storage.intake import IntakeMessage
from storage.models import Task, Turn


def _message(n: int) -> IntakeMessage:
    ts = f"1700000000.{n:06d}"
    return IntakeMessage(
        team_id="T1",
        channel_id="C1",
        user_id="U1",
        text=f"task {n}: add an index to the orders table",
        message_ts=ts,
        thread_ts=ts,
        source="mention",
    )


async def test_a_burst_is_committed_in_a_few_batches_and_every_message_is_durable(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    writer = IntakeWriter(database_url)
    try:
        records = await asyncio.gather(*(writer.submit(_message(n)) for n in range(60)))
    finally:
        await writer.close()

    assert [r.created for r in records] == [True] * 60
    assert len({r.task_id for r in records}) == 60
    assert writer.batches < 60  # grouped: the first commit's wait gathered the rest
    async with sessions() as session:
        turns = (await session.exec(select(Turn).order_by(col(Turn.id)))).all()
    assert [t.message_ts for t in turns] == [_message(n).message_ts for n in range(60)]


async def test_a_retried_message_gets_its_first_turn_back(database_url: str) -> None:
    writer = IntakeWriter(database_url)
    try:
        first = await writer.submit(_message(1))
        again, other = await asyncio.gather(writer.submit(_message(1)), writer.submit(_message(2)))
    finally:
        await writer.close()

    assert first.created and not again.created and other.created
    assert (again.task_id, again.turn_id, again.seq) == (first.task_id, first.turn_id, 1)


async def test_an_acked_message_is_on_disk_not_only_in_the_page_cache(sqlite_url: str) -> None:
    """The writer's commits wait for their fsync (synchronous=FULL): what Slack was told is
    safe survives a power cut, not only a crash of the process. The app's other SQLite
    connections keep NORMAL."""
    writer = IntakeWriter(sqlite_url)
    try:
        await writer.submit(_message(1))
        assert writer.engine is not None
        with writer.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        await writer.close()
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            synchronous = await connection.exec_driver_sql("PRAGMA synchronous")
            assert synchronous.scalar() == 1  # NORMAL
    finally:
        await engine.dispose()


async def test_a_bad_message_fails_alone_and_its_neighbours_are_recorded(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    writer = IntakeWriter(database_url)
    too_long = IntakeMessage(
        team_id="T1",
        channel_id="C1",
        user_id="U1",
        text="a task",
        message_ts="1"
        * 40,  # longer than the column allows on PostgreSQL; NUL-free so SQLite takes it
        thread_ts="1" * 40,
        source="mention",
    )
    try:
        results = await asyncio.gather(
            writer.submit(_message(1)),
            writer.submit(too_long),
            writer.submit(_message(2)),
            return_exceptions=True,
        )
    finally:
        await writer.close()

    async with sessions() as session:
        recorded = {t.thread_ts for t in (await session.exec(select(Task))).all()}
    assert {_message(1).message_ts, _message(2).message_ts} <= recorded
    if database_url.startswith("postgresql"):
        # PostgreSQL enforces the column's length: that message alone fails, to its listener.
        assert isinstance(results[1], Exception) and "too long" in str(results[1])
        assert not isinstance(results[0], BaseException) and results[0].created
        assert not isinstance(results[2], BaseException) and results[2].created
    else:  # SQLite doesn't enforce VARCHAR lengths: all three are recorded
        assert not [r for r in results if isinstance(r, BaseException)]


async def test_a_database_failure_fails_the_batch_once_not_once_per_message(
    sqlite_url: str,
) -> None:
    """A locked, full or broken database fails every message alike: trying each message of
    the batch alone again would only hold all their acks (a lock waits out its busy timeout
    each time) before failing them anyway."""
    path = sqlite_url.split("///", 1)[1]
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE task_event")  # every intake of a new thread now fails
    writer = IntakeWriter(sqlite_url)
    try:
        results = await asyncio.gather(
            *(writer.submit(_message(n)) for n in range(3)), return_exceptions=True
        )
    finally:
        await writer.close()

    assert all(isinstance(r, Exception) and "no such table" in str(r) for r in results)
    assert writer.batches == 1


async def test_close_commits_what_it_took_and_refuses_the_rest(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    writer = IntakeWriter(database_url)
    taken = [asyncio.create_task(writer.submit(_message(n))) for n in range(5)]
    await asyncio.sleep(0)  # all five are queued before shutdown begins

    await writer.close()

    assert all(t.done() and t.result().created for t in taken)
    with pytest.raises(WriterClosed):
        await writer.submit(_message(9))
    async with sessions() as session:
        assert len((await session.exec(select(Task))).all()) == 5


async def test_a_connection_the_server_dropped_is_replaced_without_failing_a_message(
    postgres_database: str,
) -> None:
    writer = IntakeWriter(postgres_database)
    try:
        await writer.submit(_message(801))
        # A restart, a failover or an idle timeout: the server ends the writer's session.
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert ended

        record = await writer.submit(_message(802))
    finally:
        await writer.close()

    assert record.created
    with psycopg.connect(postgres_database) as connection:
        threads = {ts for (ts,) in connection.execute("SELECT thread_ts FROM task")}
        connection.execute("TRUNCATE task, turn, task_event RESTART IDENTITY CASCADE")
    assert {_message(801).message_ts, _message(802).message_ts} <= threads
