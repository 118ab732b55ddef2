"""The statements intake runs: lookups on an index, timestamps the ORM reads back, and the
caller's transaction left to the caller."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_engine, session_factory
from storage.intake import IntakeMessage, record_intakes
from storage.models import Task, TaskEvent, Turn

STAMP = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def _message(ts: str, *, channel: str = "C1", thread: str | None = None) -> IntakeMessage:
    return IntakeMessage(
        team_id="T1",
        channel_id=channel,
        thread_ts=thread or ts,
        message_ts=ts,
        user_id="U1",
        text=f"request {ts}",
    )


async def test_every_intake_lookup_is_on_an_index(sqlite_url: str) -> None:
    """SQLite scans a whole table for a row-value IN list or an OR across channels; intake
    would then slow down with every task ever recorded."""
    engine = create_engine(sqlite_url)
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with session_factory(engine)() as session:
            await record_intakes(session=session, messages=[_message("1.1"), _message("2.1")])
            # Follow-ups and a retry, in two channels: every lookup intake makes.
            await record_intakes(
                session=session,
                messages=[
                    _message("1.2", thread="1.1"),
                    _message("2.1"),
                    _message("3.1", channel="C2"),
                ],
                now=STAMP,
            )
        intake_selects = [(s, p) for s, p in statements if "FROM turn" in s or "FROM task" in s]
        assert len(intake_selects) >= 5
        async with engine.connect() as connection:
            for statement, params in intake_selects:
                plan = (
                    await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
                ).all()
                details = [row[-1] for row in plan]
                assert not [d for d in details if d.startswith("SCAN t")], (statement, details)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "stamp", [STAMP, STAMP.replace(microsecond=0)], ids=["microseconds", "whole-second"]
)
async def test_timestamps_written_by_intake_read_back_through_the_orm(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], stamp: datetime
) -> None:
    await record_intakes(session=session, messages=[_message("1.1")], now=stamp)
    await session.commit()
    async with sessions() as fresh:
        task = (await fresh.exec(select(Task))).one()
        turn = (await fresh.exec(select(Turn))).one()
        created = (await fresh.exec(select(TaskEvent))).one()
    assert task.created_at == task.updated_at == turn.created_at == created.created_at == stamp
    assert task.created_at.tzinfo is not None
    # Compared in SQL like the rows the ORM writes: on SQLite the stored text must be in
    # the ORM's own format, or `>=` on a whole second misses the row.
    async with sessions() as fresh:
        since = (await fresh.exec(select(Task).where(col(Task.created_at) >= stamp))).all()
        exactly = (await fresh.exec(select(Turn).where(col(Turn.created_at) == stamp))).all()
    assert [t.id for t in since] == [task.id]
    assert [t.id for t in exactly] == [turn.id]


async def test_a_naive_now_is_refused_before_anything_is_written(
    session: AsyncSession,
) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        await record_intakes(
            session=session, messages=[_message("1.1")], now=datetime(2026, 3, 2, 9, 0)
        )
    count = (await session.exec(text("SELECT COUNT(*) FROM task"))).one()  # type: ignore[call-overload]
    assert count[0] == 0


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_failed_intake_leaves_the_callers_transaction_to_the_caller(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The caller owns the transaction: a failed intake inside its savepoint undoes that
    savepoint alone, and what the caller wrote before it still commits."""
    too_long = _message("1" * 40)  # longer than the column allows on PostgreSQL
    async with sessions.begin() as session:
        await record_intakes(session=session, messages=[_message("1.1")])
        with pytest.raises(DBAPIError, match="too long"):
            async with session.begin_nested():
                await record_intakes(session=session, messages=[too_long])

    async with sessions() as session:
        tasks = (await session.exec(select(Task))).all()
    assert [t.thread_ts for t in tasks] == ["1.1"]
