"""Task intake and the task status state machine, with its TaskEvent history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_name
from storage.models import Task, TaskEvent, TaskStatus, Turn, TurnStatus
from storage.types import utcnow

BOT_ACTOR = "pmteam"
TITLE_LENGTH = 120

S = TaskStatus
ALLOWED_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.QUEUED: frozenset({S.WORKING, S.BLOCKED, S.COMPLETED, S.FAILED}),
    S.WORKING: frozenset({S.QUEUED, S.IN_PROGRESS, S.BLOCKED, S.COMPLETED, S.FAILED}),
    S.IN_PROGRESS: frozenset({S.QUEUED, S.WORKING, S.BLOCKED, S.COMPLETED, S.FAILED}),
    S.BLOCKED: frozenset({S.QUEUED, S.WORKING, S.IN_PROGRESS, S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset({S.QUEUED, S.WORKING}),
    S.FAILED: frozenset({S.QUEUED, S.WORKING, S.COMPLETED}),
}

# A follow-up in the thread puts a finished or waiting task back in the queue.
_REQUEUE_ON_FOLLOW_UP = frozenset({S.IN_PROGRESS, S.BLOCKED, S.COMPLETED, S.FAILED})


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


@dataclass(frozen=True)
class Intake:
    task: Task
    turn: Turn
    created: bool  # False when this Slack message had already been recorded


def make_title(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first_line) <= TITLE_LENGTH:
        return first_line or "(no text)"
    return first_line[: TITLE_LENGTH - 1].rstrip() + "…"


@dataclass(frozen=True)
class IntakeMessage:
    """One Slack message addressed to pmteam, as intake records it."""

    team_id: str
    channel_id: str
    thread_ts: str
    message_ts: str
    user_id: str
    text: str
    source: str = "mention"

    @property
    def message_key(self) -> tuple[str, str, str]:
        return (self.team_id, self.channel_id, self.message_ts)

    @property
    def thread_key(self) -> tuple[str, str, str]:
        return (self.team_id, self.channel_id, self.thread_ts)


async def record_intake(
    *,
    session: AsyncSession,
    team_id: str,
    channel_id: str,
    thread_ts: str,
    message_ts: str,
    user_id: str,
    text: str,
    source: str = "mention",
    now: datetime | None = None,
) -> Intake:
    """Upsert the thread's task and queue a turn for this message, in one transaction.

    Idempotent on (team, channel, message ts): Slack's retries and the double delivery of a
    mention (app_mention + message) return the turn recorded the first time.
    """
    message = IntakeMessage(
        team_id=team_id,
        channel_id=channel_id,
        thread_ts=thread_ts,
        message_ts=message_ts,
        user_id=user_id,
        text=text,
        source=source,
    )
    (intake,) = await record_intakes(session=session, messages=[message], now=now)
    return intake


async def record_intakes(
    *,
    session: AsyncSession,
    messages: Sequence[IntakeMessage],
    now: datetime | None = None,
) -> list[Intake]:
    """`record_intake` for many messages in ONE transaction (a group commit), in order.

    Under load the ack path is set by commits, not work: a handful of statements serve a
    whole batch. A message already recorded, or repeated within the batch, gets the first
    turn back with `created=False`.
    """
    now = now or utcnow()
    for _attempt in range(3):
        try:
            return await _record_batch(session=session, messages=messages, now=now)
        except IntegrityError:
            # Another replica recorded the same message or thread at the same moment.
            await session.rollback()
    raise RuntimeError("could not record the Slack messages after 3 attempts")


async def _record_batch(
    *, session: AsyncSession, messages: Sequence[IntakeMessage], now: datetime
) -> list[Intake]:
    message_keys = list(dict.fromkeys(m.message_key for m in messages))
    found_turns = await session.exec(
        select(Turn)
        .where(tuple_(Turn.team_id, Turn.channel_id, Turn.message_ts).in_(message_keys))
        .execution_options(populate_existing=True)
    )
    turns_by_key: dict[tuple[str, str, str], Turn] = {
        (t.team_id, t.channel_id, t.message_ts): t for t in found_turns.all()
    }
    existing_turn_keys = set(turns_by_key)
    thread_keys = list(dict.fromkeys(m.thread_key for m in messages))
    tasks_query = (
        select(Task)
        .where(tuple_(Task.team_id, Task.channel_id, Task.thread_ts).in_(thread_keys))
        .execution_options(populate_existing=True)
    )
    if dialect_name(session) == "postgresql":
        tasks_query = tasks_query.with_for_update()
    tasks_by_thread: dict[tuple[str, str, str], Task] = {
        (t.team_id, t.channel_id, t.thread_ts): t for t in (await session.exec(tasks_query)).all()
    }
    for turn in turns_by_key.values():
        if turn.task_id not in {t.id for t in tasks_by_thread.values()}:
            task = await session.get(Task, turn.task_id)
            assert task is not None
            tasks_by_thread[(task.team_id, task.channel_id, task.thread_ts)] = task

    # New threads become tasks. Bulk INSERT … RETURNING: one statement for the batch, with
    # far less per-row work than adding ORM objects one by one.
    new_params: dict[tuple[str, str, str], dict[str, object]] = {}
    for message in messages:
        key = message.thread_key
        if message.message_key in existing_turn_keys or key in tasks_by_thread:
            continue
        new_params.setdefault(
            key,
            {
                "team_id": message.team_id,
                "channel_id": message.channel_id,
                "thread_ts": message.thread_ts,
                "requester_id": message.user_id,
                "title": make_title(message.text),
                "request_text": message.text,
                "status": TaskStatus.QUEUED,
                "created_at": now,
                "updated_at": now,
            },
        )
    new_tasks: dict[tuple[str, str, str], Task] = {}
    if new_params:
        inserted = await session.exec(
            insert(Task).returning(Task, sort_by_parameter_order=True),
            params=list(new_params.values()),
        )
        new_tasks = dict(zip(new_params, inserted.scalars().all(), strict=True))
        await session.exec(
            insert(TaskEvent),
            params=[
                {
                    "task_id": task.id,
                    "kind": "status",
                    "to_status": TaskStatus.QUEUED,
                    "actor": task.requester_id,
                    "note": "asked in Slack",
                    "created_at": now,
                }
                for task in new_tasks.values()
            ],
        )
        tasks_by_thread.update(new_tasks)

    follow_up_ids = [
        t.id for k, t in tasks_by_thread.items() if k not in new_tasks and t.id is not None
    ]
    next_seq: dict[int, int] = {}
    if follow_up_ids:
        rows = await session.exec(
            select(Turn.task_id, func.max(Turn.seq))
            .where(col(Turn.task_id).in_(follow_up_ids))
            .group_by(col(Turn.task_id))
        )
        next_seq = {task_id: (top or 0) + 1 for task_id, top in rows.all()}

    results: list[Intake | IntakeMessage] = []
    turn_params: list[dict[str, object]] = []
    queued: dict[tuple[str, str, str], int] = {}  # message key -> index in turn_params
    for message in messages:
        task = tasks_by_thread[message.thread_key]
        assert task.id is not None
        if message.message_key in turns_by_key:
            turn = turns_by_key[message.message_key]
            results.append(Intake(task=task, turn=turn, created=False))
            continue
        if message.message_key in queued:
            results.append(message)  # a repeat within this batch: resolved below
            continue
        if task.status in _REQUEUE_ON_FOLLOW_UP:
            apply_transition(
                session=session,
                task=task,
                to_status=TaskStatus.QUEUED,
                actor=message.user_id,
                note="follow-up in the thread",
                now=now,
            )
        seq = next_seq.get(task.id, 1)
        next_seq[task.id] = seq + 1
        queued[message.message_key] = len(turn_params)
        turn_params.append(
            {
                "task_id": task.id,
                "seq": seq,
                "team_id": message.team_id,
                "channel_id": message.channel_id,
                "message_ts": message.message_ts,
                "user_id": message.user_id,
                "text": message.text,
                "source": message.source,
                "status": TurnStatus.QUEUED,
                "attempts": 0,
                "created_at": now,
            }
        )
        results.append(message)
    new_turns: list[Turn] = []
    if turn_params:
        await session.flush()  # the follow-up transitions, before the turns that caused them
        inserted_turns = await session.exec(
            insert(Turn).returning(Turn, sort_by_parameter_order=True), params=turn_params
        )
        new_turns = list(inserted_turns.scalars().all())
    first_seen: set[tuple[str, str, str]] = set()
    intakes: list[Intake] = []
    for item in results:
        if isinstance(item, Intake):
            intakes.append(item)
            continue
        turn = new_turns[queued[item.message_key]]
        task = tasks_by_thread[item.thread_key]
        intakes.append(Intake(task=task, turn=turn, created=item.message_key not in first_seen))
        first_seen.add(item.message_key)
    await session.commit()
    return intakes


async def _turn_for_message(
    *, session: AsyncSession, team_id: str, channel_id: str, message_ts: str
) -> Turn | None:
    result = await session.exec(
        select(Turn).where(
            Turn.team_id == team_id, Turn.channel_id == channel_id, Turn.message_ts == message_ts
        )
    )
    return result.first()


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
