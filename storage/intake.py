"""Intake: Slack messages become tasks and queued turns, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, Result, bindparam, func, insert, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Task, TaskEvent, TaskStatus, Turn, TurnStatus, Visibility
from storage.types import utcnow

TITLE_LENGTH = 120

# A follow-up in the thread puts a finished or waiting task back in the queue.
REQUEUE_ON_FOLLOW_UP = frozenset(
    {TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.COMPLETED, TaskStatus.FAILED}
)

SlackKey = tuple[str, str, str]  # (team, channel, ts)

# Built once: on the ack path, building a statement cost as much as running it.
# Each lookup is one channel's keys, on the unique index: SQLite scans the whole table for a
# row-value `IN` list, or for an `OR` across channels.
TURNS_BY_MESSAGE = select(
    col(Turn.id),
    col(Turn.task_id),
    col(Turn.seq),
    col(Turn.team_id),
    col(Turn.channel_id),
    col(Turn.message_ts),
).where(
    col(Turn.team_id) == bindparam("team_id"),
    col(Turn.channel_id) == bindparam("channel_id"),
    col(Turn.message_ts).in_(bindparam("stamps", expanding=True)),
)
TASKS_BY_THREAD = (
    select(
        col(Task.id), col(Task.status), col(Task.team_id), col(Task.channel_id), col(Task.thread_ts)
    )
    .where(
        col(Task.team_id) == bindparam("team_id"),
        col(Task.channel_id) == bindparam("channel_id"),
        col(Task.thread_ts).in_(bindparam("stamps", expanding=True)),
    )
    .order_by(col(Task.thread_ts))
    # PostgreSQL: the turn seqs are read under this lock. SQLite's write lock, taken at
    # BEGIN, already covers the whole transaction.
    .with_for_update()
)
TOP_SEQS = (
    select(col(Turn.task_id), func.max(col(Turn.seq)))
    .where(col(Turn.task_id).in_(bindparam("task_ids", expanding=True)))
    .group_by(col(Turn.task_id))
)
REQUEUE_TASKS = (
    update(Task)
    .where(col(Task.id).in_(bindparam("task_ids", expanding=True)))
    .values(status=TaskStatus.QUEUED, status_reason=None, updated_at=bindparam("now"))
)
INSERT_TASKS = insert(Task).returning(
    col(Task.id), col(Task.team_id), col(Task.channel_id), col(Task.thread_ts)
)
INSERT_TURNS = insert(Turn).returning(
    col(Turn.id), col(Turn.team_id), col(Turn.channel_id), col(Turn.message_ts)
)
INSERT_EVENTS = insert(TaskEvent)


@dataclass(frozen=True)
class IntakeMessage:
    """One Slack message addressed to pmteam, as intake records it."""

    team_id: str
    channel_id: str
    thread_ts: str
    message_ts: str
    user_id: str
    text: str
    source: str = "mention"  # mention | dm | assistant | thread | reopen | shortcut
    # Files shared with the message, as `turn.files` keeps them (downloaded by the worker).
    files: tuple[dict[str, Any], ...] = ()
    # Asked where the channel's people can't read it (a DM, the assistant pane, a private
    # channel): the task is its requester's until they share it.
    private: bool = False

    @property
    def starts_tasks(self) -> bool:
        """A reply in a channel thread (`thread`) is a follow-up of the thread's task if it
        has one, and nothing otherwise: it never starts a task of its own."""
        return self.source != "thread"

    @property
    def message_key(self) -> SlackKey:
        return (self.team_id, self.channel_id, self.message_ts)

    @property
    def thread_key(self) -> SlackKey:
        return (self.team_id, self.channel_id, self.thread_ts)


@dataclass(frozen=True)
class IntakeRecord:
    """What intake recorded for one message: enough to ack it and to log it."""

    task_id: int
    turn_id: int
    seq: int
    created: bool  # False when this Slack message had already been recorded

    @property
    def task_ref(self) -> str:
        return f"T-{self.task_id}"


@dataclass(frozen=True)
class Intake:
    """An `IntakeRecord` with its task and turn loaded, for callers that go on to use them."""

    task: Task
    turn: Turn
    created: bool


def make_title(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first_line) <= TITLE_LENGTH:
        return first_line or "(no text)"
    return first_line[: TITLE_LENGTH - 1].rstrip() + "…"


# A unique key taken: PostgreSQL's unique_violation; SQLite's SQLITE_CONSTRAINT_UNIQUE and
# SQLITE_CONSTRAINT_PRIMARYKEY.
_UNIQUE_VIOLATION = "23505"
_SQLITE_KEY_CONFLICTS = (2067, 1555)


def is_key_conflict(exc: BaseException) -> bool:
    """A unique key was taken: another replica recorded the same message or thread first.
    Other integrity errors (a NULL, a foreign key, a check) are about the values themselves."""
    if not isinstance(exc, IntegrityError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == _UNIQUE_VIOLATION)
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return code in _SQLITE_KEY_CONFLICTS
    return True  # a driver that doesn't say which: taken as the race, as it most likely is


def worth_retrying(exc: DBAPIError) -> bool:
    """Another replica recorded the same message or thread first (a unique key), or
    PostgreSQL broke a deadlock or a serialization conflict with this transaction: the same
    messages succeed in a new transaction."""
    return is_key_conflict(exc) or getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def unstorable(exc: BaseException) -> str | None:
    """Why a message can't be stored, when the error is about its values: storing it again,
    in a new transaction or on Slack's retry, fails the same way. None for anything else (a
    key race, a lock, a lost connection, a full disk), which may well succeed next time.

    The reason is a short label for logs and metrics, never the values themselves."""
    if isinstance(exc, UnicodeError):
        return "encoding"  # a lone surrogate: UTF-8 can't encode it, on any database
    if isinstance(exc, ValueError):
        return "invalid_value"  # a driver refused a parameter before sending it
    if isinstance(exc, DataError):
        return "invalid_value"  # PostgreSQL: NUL in text, a value too long, …
    if isinstance(exc, IntegrityError) and not is_key_conflict(exc):
        return "constraint"
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        # Raised while SQLAlchemy bound a parameter: the error it wraps says which.
        orig = exc.orig
        return unstorable(orig) if isinstance(orig, ValueError) else None
    return None


def write_intakes(
    connection: Connection, messages: Sequence[IntakeMessage], now: datetime
) -> list[IntakeRecord | None]:
    """Record the messages in the caller's transaction, in order; the caller commits.

    A new thread becomes a task (`queued`, with its first TaskEvent); every message becomes a
    queued turn with the next `seq` of its task; a follow-up on a finished or blocked task puts
    it back in the queue, with a TaskEvent. A message already recorded, or repeated within
    the batch, gets its first turn back with `created=False`. A thread reply in a thread with
    no task is not recorded: its record is None. Raises IntegrityError when another replica
    recorded the same message or thread in between (`worth_retrying`), and an error that
    `unstorable` names when a message's values can't be stored.
    """
    turns: dict[SlackKey, tuple[int, int, int]] = {  # message key -> (turn id, task id, seq)
        (team, channel, ts): (turn_id, task_id, seq)
        for turn_id, task_id, seq, team, channel, ts in _by_slack_key(
            connection, TURNS_BY_MESSAGE, [m.message_key for m in messages]
        )
    }
    tasks: dict[SlackKey, tuple[int, str]] = {  # thread key -> (task id, status)
        (team, channel, ts): (task_id, status)
        for task_id, status, team, channel, ts in _by_slack_key(
            connection, TASKS_BY_THREAD, [m.thread_key for m in messages]
        )
    }
    new_tasks = _insert_tasks(connection, messages, turns, tasks, now)
    tasks.update(new_tasks)

    follow_ups = [task_id for key, (task_id, _) in tasks.items() if key not in new_tasks]
    next_seq: dict[int, int] = {}
    if follow_ups:
        top_seqs = connection.execute(TOP_SEQS, {"task_ids": follow_ups})
        next_seq = {task_id: (top or 0) + 1 for task_id, top in top_seqs}

    new_turns: dict[SlackKey, dict[str, Any]] = {}
    requeued: dict[int, tuple[str, str]] = {}  # task id -> (from status, by whom)
    for message in messages:
        key = message.message_key
        if key in turns or key in new_turns or message.thread_key not in tasks:
            continue
        task_id, status = tasks[message.thread_key]
        if status in REQUEUE_ON_FOLLOW_UP and task_id not in requeued:
            requeued[task_id] = (status, message.user_id)
        seq = next_seq.get(task_id, 1)
        next_seq[task_id] = seq + 1
        new_turns[key] = {
            "task_id": task_id,
            "seq": seq,
            "team_id": message.team_id,
            "channel_id": message.channel_id,
            "message_ts": message.message_ts,
            "user_id": message.user_id,
            "text": message.text,
            "files": list(message.files) or None,
            "source": message.source,
            "status": TurnStatus.QUEUED,
            "attempts": 0,
            "created_at": now,
        }

    if requeued:
        connection.execute(REQUEUE_TASKS, {"task_ids": list(requeued), "now": now})
        _insert_events(
            connection,
            [
                (task_id, from_status, actor, "follow-up in the thread")
                for task_id, (from_status, actor) in requeued.items()
            ],
            now,
        )
    if new_turns:
        rows = [new_turns[key] for key in sorted(new_turns)]  # in key order, like the locks
        inserted = connection.execute(INSERT_TURNS, rows)
        for key, turn_id in _ids_by_key(inserted).items():
            turns[key] = (turn_id, new_turns[key]["task_id"], new_turns[key]["seq"])

    first_seen: set[SlackKey] = set()
    records: list[IntakeRecord | None] = []
    for message in messages:
        key = message.message_key
        if key not in turns:
            records.append(None)  # a reply in a thread that is not a task
            continue
        turn_id, task_id, seq = turns[key]
        created = key in new_turns and key not in first_seen
        first_seen.add(key)
        records.append(IntakeRecord(task_id=task_id, turn_id=turn_id, seq=seq, created=created))
    return records


def _by_slack_key(
    connection: Connection, lookup: Executable, keys: Iterable[SlackKey]
) -> list[tuple[Any, ...]]:
    """`lookup`'s rows for these (team, channel, ts) keys, one query per channel."""
    by_channel: dict[tuple[str, str], set[str]] = {}
    for team_id, channel_id, ts in keys:
        by_channel.setdefault((team_id, channel_id), set()).add(ts)
    found: list[tuple[Any, ...]] = []
    # In key order, so that two replicas lock rows in the same order and can't deadlock.
    for (team_id, channel_id), stamps in sorted(by_channel.items()):
        params = {"team_id": team_id, "channel_id": channel_id, "stamps": sorted(stamps)}
        found.extend(tuple(row) for row in connection.execute(lookup, params))
    return found


def _insert_tasks(
    connection: Connection,
    messages: Sequence[IntakeMessage],
    turns: dict[SlackKey, tuple[int, int, int]],
    tasks: dict[SlackKey, tuple[int, str]],
    now: datetime,
) -> dict[SlackKey, tuple[int, str]]:
    """One `queued` task, with its first TaskEvent, for each thread not seen before."""
    rows: dict[SlackKey, dict[str, Any]] = {}
    for message in messages:
        key = message.thread_key
        if not message.starts_tasks or message.message_key in turns or key in tasks or key in rows:
            continue
        rows[key] = {
            "team_id": message.team_id,
            "channel_id": message.channel_id,
            "thread_ts": message.thread_ts,
            "requester_id": message.user_id,
            "title": make_title(message.text),
            "request_text": message.text,
            "status": TaskStatus.QUEUED,
            "visibility": Visibility.PRIVATE if message.private else Visibility.CHANNEL,
            "created_at": now,
            "updated_at": now,
        }
    if not rows:
        return {}
    inserted = connection.execute(
        INSERT_TASKS,
        [rows[key] for key in sorted(rows)],  # in key order, like the locks
    )
    created = {
        key: (task_id, TaskStatus.QUEUED.value) for key, task_id in _ids_by_key(inserted).items()
    }
    _insert_events(
        connection,
        [
            (created[key][0], None, row["requester_id"], "asked in Slack")
            for key, row in rows.items()
        ],
        now,
    )
    return created


def _ids_by_key(inserted: Result[int | None, str, str, str]) -> dict[SlackKey, int]:
    """The id of each row an INSERT returned, by its Slack key (the other three columns)."""
    ids: dict[SlackKey, int] = {}
    for row_id, team, channel, ts in inserted:
        assert row_id is not None, "a primary key, returned by the INSERT"
        ids[(team, channel, ts)] = row_id
    return ids


def _insert_events(
    connection: Connection, events: list[tuple[int, str | None, str, str]], now: datetime
) -> None:
    """Status events into `queued`: (task id, from status, actor, note) each."""
    connection.execute(
        INSERT_EVENTS,
        [
            {
                "task_id": task_id,
                "kind": "status",
                "from_status": from_status,
                "to_status": TaskStatus.QUEUED,
                "actor": actor,
                "note": note,
                "created_at": now,
            }
            for task_id, from_status, actor, note in events
        ],
    )


async def record_intakes(
    *,
    session: AsyncSession,
    messages: Sequence[IntakeMessage],
    now: datetime | None = None,
) -> list[Intake | None]:
    """`write_intakes` in this session's transaction, with the tasks and turns loaded (None
    for a thread reply outside any task); the caller commits."""
    stamp = now or utcnow()
    if stamp.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")

    def write(sync_session: Session) -> list[IntakeRecord | None]:
        sync_session.flush()  # what the caller changed in this transaction is seen below
        return write_intakes(sync_session.connection(), messages, stamp)

    records = await session.run_sync(write)
    intakes: list[Intake | None] = []
    for record in records:
        if record is None:
            intakes.append(None)
            continue
        task = await session.get(Task, record.task_id, populate_existing=True)
        turn = await session.get(Turn, record.turn_id, populate_existing=True)
        assert task is not None and turn is not None, "recorded just above"
        intakes.append(Intake(task=task, turn=turn, created=record.created))
    return intakes


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
    """Upsert the thread's task and queue a turn for this message, in the caller's
    transaction.

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
    if intake is None:
        raise LookupError(f"no task in thread {thread_ts} for a {source} message")
    return intake
