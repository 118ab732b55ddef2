"""Intake: Slack messages become tasks and queued turns, in one transaction.

This is the write that sits on Slack's ack path, so it is plain SQL on a synchronous
connection: no ORM unit of work, a fixed handful of statements for a whole batch, and every
lookup on a unique index. The bot's intake writer runs it in a thread of its own, one hop per
batch; `record_intakes` runs the same code inside an `AsyncSession`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Task, TaskEvent, TaskStatus, Turn, TurnStatus
from storage.types import utcnow

TITLE_LENGTH = 120
ATTEMPTS = 3  # an IntegrityError means another replica took the same message or thread

# A follow-up in the thread puts a finished or waiting task back in the queue.
REQUEUE_ON_FOLLOW_UP = frozenset(
    {TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.COMPLETED, TaskStatus.FAILED}
)

TASK: Table = Task.__table__  # type: ignore[attr-defined]
TURN: Table = Turn.__table__  # type: ignore[attr-defined]
TASK_EVENT: Table = TaskEvent.__table__  # type: ignore[attr-defined]

SlackKey = tuple[str, str, str]  # (team, channel, ts)


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
    def message_key(self) -> SlackKey:
        return (self.team_id, self.channel_id, self.message_ts)

    @property
    def thread_key(self) -> SlackKey:
        return (self.team_id, self.channel_id, self.thread_ts)


@dataclass(frozen=True)
class Intake:
    """What intake recorded for one message: its task's and turn's rows.

    The ack path needs only ids, so the `Task` and `Turn` objects are built on first use
    (building a SQLModel object costs more than recording the row did)."""

    task_row: dict[str, Any]
    turn_row: dict[str, Any]
    created: bool  # False when this Slack message had already been recorded

    @property
    def task_ref(self) -> str:
        return f"T-{self.task_row['id']}"

    @cached_property
    def task(self) -> Task:
        return Task(**self.task_row)

    @cached_property
    def turn(self) -> Turn:
        return Turn(**self.turn_row)


def make_title(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first_line) <= TITLE_LENGTH:
        return first_line or "(no text)"
    return first_line[: TITLE_LENGTH - 1].rstrip() + "…"


def _by_channel(table: Table, ts_column: Column[Any]) -> Select[Any]:
    return select(table).where(
        table.c.team_id == bindparam("team_id"),
        table.c.channel_id == bindparam("channel_id"),
        ts_column.in_(bindparam("stamps", expanding=True)),
    )


# Built once: a statement object made anew for every batch costs more to look up in
# SQLAlchemy's compiled cache than SQLite takes to run it.
TURNS_BY_MESSAGE = _by_channel(TURN, TURN.c.message_ts)
TASKS_BY_THREAD = _by_channel(TASK, TASK.c.thread_ts)
TASKS_BY_THREAD_LOCKED = TASKS_BY_THREAD.with_for_update()
TASKS_BY_ID = select(TASK).where(TASK.c.id.in_(bindparam("ids", expanding=True)))
NEXT_SEQ = (
    select(TURN.c.task_id, func.max(TURN.c.seq))
    .where(TURN.c.task_id.in_(bindparam("ids", expanding=True)))
    .group_by(TURN.c.task_id)
)
REQUEUE = (
    sql_update(TASK)
    .where(TASK.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=TaskStatus.QUEUED, status_reason=None, updated_at=bindparam("now"))
)
# New rows come back with their Slack keys and are matched by key: asking for them in
# parameter order instead makes SQLAlchemy send one INSERT per row on SQLite.
INSERT_TASKS = insert(TASK).returning(
    TASK.c.team_id, TASK.c.channel_id, TASK.c.thread_ts, TASK.c.id
)
INSERT_TURNS = insert(TURN).returning(
    TURN.c.team_id, TURN.c.channel_id, TURN.c.message_ts, TURN.c.id
)
INSERT_EVENTS = insert(TASK_EVENT)


def _rows_by_key(
    connection: Connection, statement: Select[Any], ts_name: str, keys: Iterable[SlackKey]
) -> dict[SlackKey, dict[str, Any]]:
    """The rows whose (team, channel, ts) is in `keys`: one lookup on the unique index per
    channel. (SQLite scans the whole table for a row-value `IN` list, or for an `OR` across
    channels, so one statement for all keys would slow intake down as the tables grow.)"""
    by_channel: dict[tuple[str, str], list[str]] = {}
    for team_id, channel_id, ts in keys:
        by_channel.setdefault((team_id, channel_id), []).append(ts)
    rows: dict[SlackKey, dict[str, Any]] = {}
    for (team_id, channel_id), stamps in by_channel.items():
        params = {"team_id": team_id, "channel_id": channel_id, "stamps": stamps}
        for row in connection.execute(statement, params).mappings():
            rows[(row["team_id"], row["channel_id"], row[ts_name])] = dict(row)
    return rows


def write_intakes(
    connection: Connection, messages: Sequence[IntakeMessage], now: datetime
) -> list[Intake]:
    """Record the messages in the caller's transaction, in order; the caller commits.

    A new thread becomes a task (`queued`, with its first TaskEvent); every message becomes a
    queued turn with the next `seq` of its task; a follow-up on a finished or blocked task puts
    it back in the queue. A message already recorded, or repeated within the batch, gets its
    first turn back with `created=False`. Raises IntegrityError when another replica recorded
    the same message or thread in between: roll back and call again.
    """
    turns = _rows_by_key(
        connection, TURNS_BY_MESSAGE, "message_ts", dict.fromkeys(m.message_key for m in messages)
    )
    recorded = set(turns)
    locked = connection.dialect.name == "postgresql"
    tasks = _rows_by_key(
        connection,
        TASKS_BY_THREAD_LOCKED if locked else TASKS_BY_THREAD,
        "thread_ts",
        dict.fromkeys(m.thread_key for m in messages),
    )
    tasks_by_id = {task["id"]: task for task in tasks.values()}
    # A message recorded under another thread key (Slack said thread_ts differently once).
    strays = {turn["task_id"] for turn in turns.values()} - set(tasks_by_id)
    if strays:
        for row in connection.execute(TASKS_BY_ID, {"ids": list(strays)}).mappings():
            tasks_by_id[row["id"]] = dict(row)

    new_tasks = _insert_tasks(connection, messages, recorded, tasks, now)
    tasks.update(new_tasks)
    tasks_by_id.update((task["id"], task) for task in new_tasks.values())

    follow_ups = [task["id"] for key, task in tasks.items() if key not in new_tasks]
    next_seq: dict[int, int] = {}
    if follow_ups:
        next_seq = {
            task_id: (top or 0) + 1
            for task_id, top in connection.execute(NEXT_SEQ, {"ids": follow_ups})
        }

    new_turns: list[dict[str, Any]] = []
    queued: dict[SlackKey, int] = {}  # message key -> index in new_turns
    requeued: dict[int, tuple[str, str]] = {}  # task id -> (from status, by whom)
    order: list[tuple[IntakeMessage, bool]] = []  # (message, created)
    for message in messages:
        key = message.message_key
        if key in recorded or key in queued:
            order.append((message, False))
            continue
        task = tasks[message.thread_key]
        if task["status"] in REQUEUE_ON_FOLLOW_UP:
            requeued[task["id"]] = (task["status"], message.user_id)
            task.update(status=TaskStatus.QUEUED, status_reason=None, updated_at=now)
        seq = next_seq.get(task["id"], 1)
        next_seq[task["id"]] = seq + 1
        queued[key] = len(new_turns)
        new_turns.append(
            {
                "task_id": task["id"],
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
        order.append((message, True))

    if requeued:
        connection.execute(REQUEUE, {"ids": list(requeued), "now": now})
        connection.execute(
            INSERT_EVENTS,
            [
                {
                    "task_id": task_id,
                    "kind": "status",
                    "from_status": from_status,
                    "to_status": TaskStatus.QUEUED,
                    "actor": actor,
                    "note": "follow-up in the thread",
                    "created_at": now,
                }
                for task_id, (from_status, actor) in requeued.items()
            ],
        )
    if new_turns:
        for turn in new_turns:
            turn.update(lease_owner=None, lease_expires_at=None, heartbeat_at=None)
            turn.update(answer_text=None, failure_reason=None, started_at=None, finished_at=None)
            turns[(turn["team_id"], turn["channel_id"], turn["message_ts"])] = turn
        for team_id, channel_id, message_ts, turn_id in connection.execute(INSERT_TURNS, new_turns):
            turns[(team_id, channel_id, message_ts)]["id"] = turn_id

    return [
        Intake(
            task_row=tasks_by_id[turns[m.message_key]["task_id"]],
            turn_row=turns[m.message_key],
            created=created,
        )
        for m, created in order
    ]


def _insert_tasks(
    connection: Connection,
    messages: Sequence[IntakeMessage],
    recorded: set[SlackKey],
    tasks: dict[SlackKey, dict[str, Any]],
    now: datetime,
) -> dict[SlackKey, dict[str, Any]]:
    """One `queued` task, with its first TaskEvent, for each thread not seen before."""
    rows: dict[SlackKey, dict[str, Any]] = {}
    for message in messages:
        key = message.thread_key
        if message.message_key in recorded or key in tasks or key in rows:
            continue
        rows[key] = {
            "team_id": message.team_id,
            "channel_id": message.channel_id,
            "thread_ts": message.thread_ts,
            "requester_id": message.user_id,
            "title": make_title(message.text),
            "request_text": message.text,
            "status": TaskStatus.QUEUED,
            "status_reason": None,
            "estimated_time": None,
            "estimate_due_at": None,
            "nudged_at": None,
            "created_at": now,
            "updated_at": now,
        }
    if not rows:
        return {}
    for team_id, channel_id, thread_ts, task_id in connection.execute(
        INSERT_TASKS, list(rows.values())
    ):
        rows[(team_id, channel_id, thread_ts)]["id"] = task_id
    connection.execute(
        INSERT_EVENTS,
        [
            {
                "task_id": row["id"],
                "kind": "status",
                "from_status": None,
                "to_status": TaskStatus.QUEUED,
                "actor": row["requester_id"],
                "note": "asked in Slack",
                "created_at": now,
            }
            for row in rows.values()
        ],
    )
    return rows


def commit_intakes(
    engine: Engine, messages: Sequence[IntakeMessage], now: datetime | None = None
) -> list[Intake]:
    """`write_intakes` in a transaction of its own, committed (blocking: run it in a thread)."""
    for _attempt in range(ATTEMPTS):
        try:
            with engine.begin() as connection:
                return write_intakes(connection, messages, now or utcnow())
        except IntegrityError:
            continue
    raise RuntimeError(f"could not record the Slack messages after {ATTEMPTS} attempts")


async def record_intakes(
    *,
    session: AsyncSession,
    messages: Sequence[IntakeMessage],
    now: datetime | None = None,
) -> list[Intake]:
    """`write_intakes` in this session, committed: many messages in ONE transaction, in order."""
    stamp = now or utcnow()

    def write(sync_session: Session) -> list[Intake]:
        sync_session.flush()  # what the caller changed in this transaction is seen below
        return write_intakes(sync_session.connection(), messages, stamp)

    for _attempt in range(ATTEMPTS):
        try:
            intakes = await session.run_sync(write)
            await session.commit()
            return intakes
        except IntegrityError:
            await session.rollback()
    raise RuntimeError(f"could not record the Slack messages after {ATTEMPTS} attempts")


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
