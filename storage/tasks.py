"""The task status state machine, with its TaskEvent history, and task lookups."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Task, TaskEvent, TaskStatus
from storage.types import utcnow

BOT_ACTOR = "pmteam"

S = TaskStatus
ALLOWED_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.QUEUED: frozenset({S.WORKING, S.BLOCKED, S.COMPLETED, S.FAILED}),
    S.WORKING: frozenset({S.QUEUED, S.IN_PROGRESS, S.BLOCKED, S.COMPLETED, S.FAILED}),
    S.IN_PROGRESS: frozenset({S.QUEUED, S.WORKING, S.BLOCKED, S.COMPLETED, S.FAILED}),
    S.BLOCKED: frozenset({S.QUEUED, S.WORKING, S.IN_PROGRESS, S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset({S.QUEUED, S.WORKING}),
    S.FAILED: frozenset({S.QUEUED, S.WORKING, S.COMPLETED}),
}


class IllegalTransition(Exception):
    """A status change the state machine does not allow; the message is fit to show a person."""

    def __init__(self, task: Task, to_status: TaskStatus) -> None:
        self.task = task
        self.from_status = TaskStatus(task.status)
        self.to_status = to_status
        if self.from_status == to_status:
            message = f"{task.ref} is already {describe_status(to_status)}."
        else:
            message = (
                f"{task.ref} is {describe_status(self.from_status)}; "
                f"it can't be moved to {describe_status(to_status)}."
            )
        super().__init__(message)


def describe_status(status: TaskStatus | str) -> str:
    return TaskStatus(status).value.replace("_", " ")


def can_transition(from_status: TaskStatus | str, to_status: TaskStatus) -> bool:
    return to_status in ALLOWED_TRANSITIONS[TaskStatus(from_status)]


def apply_transition(
    *,
    session: AsyncSession,
    task: Task,
    to_status: TaskStatus,
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
) -> TaskEvent:
    """Move the task in this session's transaction and record the event; the caller commits."""
    if not can_transition(task.status, to_status):
        raise IllegalTransition(task, to_status)
    assert task.id is not None
    now = now or utcnow()
    event = TaskEvent(
        task_id=task.id,
        from_status=task.status,
        to_status=to_status,
        actor=actor,
        note=note,
        created_at=now,
    )
    task.status = to_status
    task.updated_at = now
    if to_status == TaskStatus.BLOCKED:
        task.status_reason = note
    elif to_status != TaskStatus.FAILED:
        task.status_reason = None
    session.add(task)
    session.add(event)
    return event


async def transition_task(
    *,
    session: AsyncSession,
    task_id: int,
    to_status: TaskStatus,
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
) -> Task:
    """Change a task's status through the state machine; raises IllegalTransition."""
    # Check the move against the row as it is now (locked on PostgreSQL), not against a
    # copy this session loaded earlier that another worker or person has since moved.
    task = await session.get(Task, task_id, with_for_update=True, populate_existing=True)
    if task is None:
        raise LookupError(f"T-{task_id} does not exist")
    try:
        apply_transition(
            session=session, task=task, to_status=to_status, actor=actor, note=note, now=now
        )
    except IllegalTransition:
        await session.rollback()
        raise
    await session.commit()
    return task


async def record_task_event(
    *,
    session: AsyncSession,
    task_id: int,
    kind: str,
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
) -> TaskEvent:
    """Record something that happened to a task without changing its status (e.g. a PM ack)."""
    event = TaskEvent(
        task_id=task_id, kind=kind, actor=actor, note=note, created_at=now or utcnow()
    )
    session.add(event)
    await session.commit()
    return event


async def _task_for_thread(
    *, session: AsyncSession, team_id: str, channel_id: str, thread_ts: str
) -> Task | None:
    result = await session.exec(
        select(Task).where(
            Task.team_id == team_id, Task.channel_id == channel_id, Task.thread_ts == thread_ts
        )
    )
    return result.first()


async def get_task(*, session: AsyncSession, task_id: int) -> Task | None:
    return await session.get(Task, task_id)


async def task_for_thread(
    *, session: AsyncSession, team_id: str, channel_id: str, thread_ts: str
) -> Task | None:
    return await _task_for_thread(
        session=session, team_id=team_id, channel_id=channel_id, thread_ts=thread_ts
    )
