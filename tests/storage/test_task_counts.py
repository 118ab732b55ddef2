"""Counts by status come from trigger-kept deltas and always match the tasks themselves."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.housekeeping import compact_task_counts
from storage.models import Task, TaskCountDelta, TaskStatus
from storage.queries import count_by_status
from tests.storage.support import ask, count, force_status, move_task

S = TaskStatus


async def counted_by_scanning(session: AsyncSession) -> dict[TaskStatus, int]:
    rows = await session.exec(select(Task.status, func.count()).group_by(col(Task.status)))
    counts = dict.fromkeys(TaskStatus, 0)
    for status, tasks in rows.all():
        counts[TaskStatus(status)] = tasks
    return counts


async def test_counts_follow_intake_moves_follow_ups_and_deletes(session: AsyncSession) -> None:
    first = await ask(session, thread="1.1")
    second = await ask(session, thread="2.2")
    await ask(session, thread="3.3")
    assert first.task.id and second.task.id
    for step in (S.WORKING, S.COMPLETED):
        await move_task(session, first.task.id, step, actor="x")
    await force_status(session, second.task.id, S.BLOCKED)  # a bulk UPDATE counts too
    await ask(session, thread="1.1", ts="1.5")  # a follow-up requeues the completed task

    assert await count_by_status(session=session) == await counted_by_scanning(session)
    assert (await count_by_status(session=session))[S.QUEUED] == 2

    await session.exec(delete(Task).where(col(Task.id) == second.task.id))
    await session.commit()

    counts = await count_by_status(session=session)
    assert counts == await counted_by_scanning(session)
    assert counts[S.BLOCKED] == 0 and sum(counts.values()) == 2


async def test_an_update_that_keeps_the_status_adds_no_delta(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session, thread="1.1")
    assert intake.task.id is not None
    before = await count(sessions, TaskCountDelta)

    await force_status(session, intake.task.id, S.QUEUED)

    assert await count(sessions, TaskCountDelta) == before


async def test_counting_writes_nothing_however_many_deltas_there_are(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # A count is a read: it must not take SQLite's write lock, nor wait for PostgreSQL's.
    intake = await ask(session, thread="1.1")
    assert intake.task.id is not None
    for _ in range(501):  # two delta rows per move: past where counting used to compact
        await force_status(session, intake.task.id, S.BLOCKED)
        await force_status(session, intake.task.id, S.QUEUED)
    deltas = await count(sessions, TaskCountDelta)
    assert deltas > 1000

    async with sessions() as reader:
        counts = await count_by_status(session=reader)
        assert not reader.new and not reader.dirty and not reader.deleted

    assert counts == {**dict.fromkeys(TaskStatus, 0), S.QUEUED: 1}
    assert await count(sessions, TaskCountDelta) == deltas


async def test_compaction_folds_the_deltas_into_one_row_per_status(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session, thread="1.1")
    await ask(session, thread="2.2")
    assert intake.task.id is not None
    for _ in range(3):
        await force_status(session, intake.task.id, S.BLOCKED)
        await force_status(session, intake.task.id, S.QUEUED)
    await force_status(session, intake.task.id, S.COMPLETED)

    async with sessions.begin() as housekeeping:
        await compact_task_counts(session=housekeeping)

    async with sessions() as reader:
        counts = await count_by_status(session=reader)
    assert counts == {**dict.fromkeys(TaskStatus, 0), S.QUEUED: 1, S.COMPLETED: 1}
    assert await count(sessions, TaskCountDelta) == 2  # blocked nets to zero and is dropped


async def test_concurrent_compactions_keep_the_totals(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        for n in range(30):
            await ask(session, thread=f"{n}.1")

    async def compact() -> None:
        async with sessions.begin() as session:
            await compact_task_counts(session=session)

    await asyncio.gather(*(compact() for _ in range(4)))

    async with sessions() as session:
        assert (await count_by_status(session=session))[S.QUEUED] == 30
    assert await count(sessions, TaskCountDelta) == 1


async def test_truncating_tasks_resets_the_counts_on_postgres(
    session: AsyncSession, database_url: str
) -> None:
    await ask(session, thread="1.1")
    if not database_url.startswith("postgresql"):
        return  # SQLite has no TRUNCATE

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        conn.execute("TRUNCATE task CASCADE")

    assert await count_by_status(session=session) == dict.fromkeys(TaskStatus, 0)
