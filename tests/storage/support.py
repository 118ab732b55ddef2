"""Small builders the storage tests share: Slack messages in, tasks in a given status out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.intake import Intake, record_intake
from storage.models import Report, Task, TaskEvent, TaskStatus, Turn
from storage.records import save_report
from storage.tasks import BOT_ACTOR, apply_transition

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning; tests pass explicit times


async def ask(
    session: AsyncSession,
    *,
    thread: str = "1700000000.000100",
    ts: str | None = None,
    user: str = "U1",
    channel: str = "C1",
    team: str = "T1",
    text: str = "Design the orders API",
    source: str = "mention",
    now: datetime | None = None,
) -> Intake:
    """A Slack message in `thread`, committed; the thread's first message when `ts` is not
    given."""
    intake = await record_intake(
        session=session,
        team_id=team,
        channel_id=channel,
        thread_ts=thread,
        message_ts=ts or thread,
        user_id=user,
        text=text,
        source=source,
        now=now,
    )
    await session.commit()
    return intake


async def move_task(
    session: AsyncSession,
    task_id: int,
    to_status: TaskStatus,
    *,
    actor: str = BOT_ACTOR,
    note: str | None = None,
    now: datetime | None = None,
) -> Task:
    """Move a task through the state machine and commit, as a use case would."""
    task = await session.get(Task, task_id, populate_existing=True)
    assert task is not None
    apply_transition(
        session=session, task=task, to_status=to_status, actor=actor, note=note, now=now
    )
    await session.commit()
    return task


async def force_status(session: AsyncSession, task_id: int, status: TaskStatus) -> None:
    """Put a task in a status directly (bypassing the state machine) to set up a test."""
    await session.exec(update(Task).where(col(Task.id) == task_id).values(status=status))
    await session.commit()


async def count(sessions: async_sessionmaker[AsyncSession], model: type[SQLModel]) -> int:
    async with sessions() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def load_task(sessions: async_sessionmaker[AsyncSession], task_id: int) -> Task:
    """The task as a fresh session reads it from the database."""
    async with sessions() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


async def load_turn(sessions: async_sessionmaker[AsyncSession], turn_id: int) -> Turn:
    async with sessions() as session:
        turn = await session.get(Turn, turn_id)
        assert turn is not None
        return turn


async def load_events(sessions: async_sessionmaker[AsyncSession], task_id: int) -> list[TaskEvent]:
    async with sessions() as session:
        result = await session.exec(
            select(TaskEvent).where(col(TaskEvent.task_id) == task_id).order_by(col(TaskEvent.id))
        )
        return list(result.all())


def report_data(
    *, status: str = "COMPLETED", handoffs: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "task": "Design the orders API",
        "status": status,
        "dependencies_handoffs": handoffs or [],
        **extra,
    }


async def file_report(
    session: AsyncSession,
    intake: Intake,
    *,
    status: str = "COMPLETED",
    red_flags: int = 0,
    handoffs: list[str] | None = None,
    at: datetime = T0,
) -> Report:
    assert intake.task.id is not None and intake.turn.id is not None
    report = await save_report(
        session=session,
        task_id=intake.task.id,
        turn_id=intake.turn.id,
        status=status,
        data=report_data(status=status, handoffs=handoffs),
        red_flag_count=red_flags,
        min_score=5 if red_flags else 7,
        now=at,
    )
    await session.commit()
    return report


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
