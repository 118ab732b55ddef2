"""The task status state machine, with its TaskEvent history."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Task, TaskEvent, TaskStatus, Visibility
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
    await session.flush()
    return event


async def share_task(*, session: AsyncSession, task: Task, actor: str) -> bool:
    """A private task's requester shares it with the PM; False when it wasn't private."""
    if task.visibility != Visibility.PRIVATE:
        return False
    task.visibility = Visibility.SHARED
    session.add(task)
    await record_task_event(session=session, task_id=task.id or 0, kind="shared", actor=actor)
    return True


async def keep_private(*, session: AsyncSession, task_id: int) -> None:
    """A task found to live in a private channel is its requester's, like a DM's."""
    await session.exec(
        update(Task)
        .where(col(Task.id) == task_id, col(Task.visibility) == Visibility.CHANNEL)
        .values(visibility=Visibility.PRIVATE)
    )


REPORT_RETRY_FIRST = timedelta(minutes=1)
REPORT_RETRY_MOST = timedelta(hours=1)


def report_retry_delay(attempts: int) -> timedelta:
    """1, 2, 4 … minutes after each failed try, at most an hour."""
    delay: timedelta = REPORT_RETRY_FIRST * (2 ** max(attempts - 1, 0))
    return min(delay, REPORT_RETRY_MOST)


async def mark_report_unposted(
    *, session: AsyncSession, task_id: int, error: str, now: datetime | None = None
) -> int:
    """The task's card could not be posted: keep why, and when to try again. Returns the
    number of failed tries so far."""
    task = await session.get(Task, task_id, with_for_update=True, populate_existing=True)
    if task is None:
        return 0
    now = now or utcnow()
    task.report_attempts += 1
    task.report_error = error[:200]
    task.report_retry_at = now + report_retry_delay(task.report_attempts)
    session.add(task)
    return task.report_attempts


async def mark_report_posted(*, session: AsyncSession, task_id: int) -> None:
    await session.exec(
        update(Task)
        .where(col(Task.id) == task_id, col(Task.report_error).is_not(None))
        .values(report_error=None, report_retry_at=None, report_attempts=0)
    )


async def unposted_reports(
    *, session: AsyncSession, due_by: datetime | None = None, limit: int = 20
) -> list[Task]:
    """Tasks whose card is waiting to be posted (due for a try by `due_by`, when given)."""
    query = select(Task).where(col(Task.report_retry_at).is_not(None))
    if due_by is not None:
        query = query.where(col(Task.report_retry_at) <= due_by)
    found = await session.exec(query.order_by(col(Task.report_retry_at)).limit(limit))
    return list(found.all())
