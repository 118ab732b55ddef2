"""Intake: Slack messages become tasks and queued turns, in one transaction.

This is the write that sits on Slack's ack path, so it is short: a fixed handful of
statements for a whole batch, every lookup on a unique index, and SQL handed straight to the
driver. (SQLAlchemy's statement machinery costs about twice what SQLite takes to run the
statements, and more when requests come one at a time and every path runs cold.) The bot's
intake writer runs `write_intakes` in a thread of its own, on a connection it keeps;
`record_intakes` runs the same code in an `AsyncSession` and returns ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Task, TaskStatus, Turn, TurnStatus
from storage.types import UTCDateTime, utcnow

TITLE_LENGTH = 120
ATTEMPTS = 3  # an IntegrityError means another replica took the same message or thread

# A follow-up in the thread puts a finished or waiting task back in the queue.
REQUEUE_ON_FOLLOW_UP = frozenset(
    {TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.COMPLETED, TaskStatus.FAILED}
)
QUEUED = TaskStatus.QUEUED.value  # plain text for the driver

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


class DriverSql:
    """Statements for the connection's own driver: its placeholder style, and `now` already
    in the form the timestamp columns store (every timestamp one batch writes is `now`)."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self.connection = connection
        # The driver's own cursor: SQLAlchemy's statement bookkeeping costs more than the
        # short statements here (its transaction, begun by the caller, still frames them).
        self.cursor = connection.connection.cursor()
        self.driver_error: type[Exception] = connection.dialect.loaded_dbapi.Error
        self.locks_rows = connection.dialect.name == "postgresql"
        self.mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        # The column type as this dialect stores it: on SQLite, text in SQLAlchemy's own
        # format, which must match what the ORM writes for comparisons and ordering to hold.
        stamp = UTCDateTime().dialect_impl(connection.dialect)
        process = stamp.bind_processor(connection.dialect)
        self.now: Any = process(now) if process else now

    def marks(self, count: int, width: int = 1) -> str:
        group = ", ".join([self.mark] * width)
        return ", ".join([group if width == 1 else f"({group})"] * count)

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self.run(sql, params)
        return [tuple(row) for row in self.cursor.fetchall()]

    def run(self, sql: str, params: Sequence[Any]) -> None:
        try:
            self.cursor.execute(sql, tuple(params))
        except self.driver_error as exc:
            # What SQLAlchemy would raise, so callers see IntegrityError and disconnects
            # the same way whichever path the SQL took.
            dbapi_connection = self.connection.connection.dbapi_connection
            raise DBAPIError.instance(
                sql,
                params,
                exc,
                self.driver_error,
                connection_invalidated=self.connection.dialect.is_disconnect(
                    cast(Any, exc), dbapi_connection, self.cursor
                ),
                dialect=self.connection.dialect,
            ) from exc

    def by_slack_key(
        self,
        table: str,
        columns: str,
        ts_column: str,
        keys: Iterable[SlackKey],
        *,
        lock: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Rows whose (team, channel, ts) is in `keys`, `columns` first and the key last;
        `lock` takes them FOR UPDATE where the database locks rows (PostgreSQL).

        One lookup on the unique index per channel: SQLite scans the whole table for a
        row-value `IN` list, or for an `OR` across channels."""
        by_channel: dict[tuple[str, str], list[str]] = {}
        for team_id, channel_id, ts in keys:
            by_channel.setdefault((team_id, channel_id), []).append(ts)
        found: list[tuple[Any, ...]] = []
        # In key order, so that two replicas lock rows in the same order and can't deadlock.
        for (team_id, channel_id), stamps in sorted(by_channel.items()):
            stamps.sort()
            sql = (
                f"SELECT {columns}, team_id, channel_id, {ts_column} FROM {table} "
                f"WHERE team_id = {self.mark} AND channel_id = {self.mark} "
                f"AND {ts_column} IN ({self.marks(len(stamps))})"
            )
            if lock and self.locks_rows:
                sql += f" ORDER BY {ts_column} FOR UPDATE"
            found.extend(self.rows(sql, [team_id, channel_id, *stamps]))
        return found


def write_intakes(
    connection: Connection, messages: Sequence[IntakeMessage], now: datetime
) -> list[IntakeRecord]:
    """Record the messages in the caller's transaction, in order; the caller commits.

    A new thread becomes a task (`queued`, with its first TaskEvent); every message becomes a
    queued turn with the next `seq` of its task; a follow-up on a finished or blocked task puts
    it back in the queue, with a TaskEvent. A message already recorded, or repeated within
    the batch, gets its first turn back with `created=False`. Raises IntegrityError when
    another replica recorded the same message or thread in between: roll back and call again.
    """
    sql = DriverSql(connection, now)
    try:
        return _write(sql, messages)
    finally:
        sql.cursor.close()


def _write(sql: DriverSql, messages: Sequence[IntakeMessage]) -> list[IntakeRecord]:
    turns: dict[SlackKey, tuple[int, int, int]] = {  # message key -> (turn id, task id, seq)
        (team, channel, ts): (turn_id, task_id, seq)
        for turn_id, task_id, seq, team, channel, ts in sql.by_slack_key(
            "turn", "id, task_id, seq", "message_ts", dict.fromkeys(m.message_key for m in messages)
        )
    }
    tasks: dict[SlackKey, tuple[int, str]] = {  # thread key -> (task id, status)
        (team, channel, ts): (task_id, status)
        for task_id, status, team, channel, ts in sql.by_slack_key(
            "task",
            "id, status",
            "thread_ts",
            dict.fromkeys(m.thread_key for m in messages),
            lock=True,  # the turn seqs below are read under this lock
        )
    }
    new_tasks = _insert_tasks(sql, messages, turns, tasks)
    tasks.update(new_tasks)

    follow_ups = [task_id for key, (task_id, _) in tasks.items() if key not in new_tasks]
    next_seq: dict[int, int] = {}
    if follow_ups:
        next_seq = {
            task_id: (top or 0) + 1
            for task_id, top in sql.rows(
                f"SELECT task_id, MAX(seq) FROM turn WHERE task_id IN "
                f"({sql.marks(len(follow_ups))}) GROUP BY task_id",
                follow_ups,
            )
        }

    new_turns: dict[SlackKey, tuple[Any, ...]] = {}
    requeued: dict[int, tuple[str, str]] = {}  # task id -> (from status, by whom)
    for message in messages:
        key = message.message_key
        if key in turns or key in new_turns:
            continue
        task_id, status = tasks[message.thread_key]
        if status in REQUEUE_ON_FOLLOW_UP and task_id not in requeued:
            requeued[task_id] = (status, message.user_id)
        seq = next_seq.get(task_id, 1)
        next_seq[task_id] = seq + 1
        new_turns[key] = (task_id, seq, *key, message.user_id, message.text, message.source)

    if requeued:
        sql.run(
            f"UPDATE task SET status = {sql.mark}, status_reason = NULL, updated_at = {sql.mark} "
            f"WHERE id IN ({sql.marks(len(requeued))})",
            [QUEUED, sql.now, *requeued],
        )
        _insert_events(
            sql,
            [
                (task_id, from_status, actor, "follow-up in the thread")
                for task_id, (from_status, actor) in requeued.items()
            ],
        )
    if new_turns:
        new_turns = dict(sorted(new_turns.items()))  # in key order (seq is already set)
        queued, now_value = TurnStatus.QUEUED.value, sql.now
        for turn_id, seq, team, channel, ts in sql.rows(
            "INSERT INTO turn (task_id, seq, team_id, channel_id, message_ts, user_id, text, "
            "source, status, attempts, created_at) VALUES "
            + sql.marks(len(new_turns), width=11)
            + " RETURNING id, seq, team_id, channel_id, message_ts",
            [v for row in new_turns.values() for v in (*row, queued, 0, now_value)],
        ):
            turns[(team, channel, ts)] = (turn_id, new_turns[(team, channel, ts)][0], seq)

    first_seen: set[SlackKey] = set()
    records = []
    for message in messages:
        key = message.message_key
        turn_id, task_id, seq = turns[key]
        created = key in new_turns and key not in first_seen
        first_seen.add(key)
        records.append(IntakeRecord(task_id=task_id, turn_id=turn_id, seq=seq, created=created))
    return records


def _insert_tasks(
    sql: DriverSql,
    messages: Sequence[IntakeMessage],
    turns: dict[SlackKey, tuple[int, int, int]],
    tasks: dict[SlackKey, tuple[int, str]],
) -> dict[SlackKey, tuple[int, str]]:
    """One `queued` task, with its first TaskEvent, for each thread not seen before."""
    rows: dict[SlackKey, tuple[Any, ...]] = {}
    for message in messages:
        key = message.thread_key
        if message.message_key in turns or key in tasks or key in rows:
            continue
        title = make_title(message.text)
        rows[key] = (*key, message.user_id, title, message.text, QUEUED, sql.now, sql.now)
    if not rows:
        return {}
    rows = dict(sorted(rows.items()))  # inserted in key order, like the locks above
    created = {
        (team, channel, ts): (task_id, QUEUED)
        for task_id, team, channel, ts in sql.rows(
            "INSERT INTO task (team_id, channel_id, thread_ts, requester_id, title, "
            "request_text, status, created_at, updated_at) VALUES "
            + sql.marks(len(rows), width=9)
            + " RETURNING id, team_id, channel_id, thread_ts",
            [v for row in rows.values() for v in row],
        )
    }
    _insert_events(
        sql, [(created[key][0], None, row[3], "asked in Slack") for key, row in rows.items()]
    )
    return created


def _insert_events(sql: DriverSql, events: list[tuple[int, str | None, str, str]]) -> None:
    """Status events into `queued`: (task id, from status, actor, note) each."""
    sql.run(
        "INSERT INTO task_event (task_id, kind, from_status, to_status, actor, note, "
        "created_at) VALUES " + sql.marks(len(events), width=7),
        [
            v
            for task_id, from_status, actor, note in events
            for v in (task_id, "status", from_status, QUEUED, actor, note, sql.now)
        ],
    )


def commit_intakes(
    connection: Connection, messages: Sequence[IntakeMessage], now: datetime | None = None
) -> list[IntakeRecord]:
    """`write_intakes` in a transaction of its own on this connection, committed (blocking:
    the intake writer runs it in its thread)."""
    last: DBAPIError | None = None
    for _attempt in range(ATTEMPTS):
        try:
            with connection.begin():
                return write_intakes(connection, messages, now or utcnow())
        except DBAPIError as exc:
            if not _worth_retrying(exc):
                raise
            last = exc
    raise RuntimeError(f"could not record the Slack messages after {ATTEMPTS} attempts") from last


def _worth_retrying(exc: DBAPIError) -> bool:
    """Another replica got there first (a unique key), or PostgreSQL chose this transaction
    to break a deadlock or a serialization conflict: the same batch succeeds on a retry."""
    return isinstance(exc, IntegrityError) or getattr(exc.orig, "sqlstate", None) in (
        "40P01",
        "40001",
    )


async def record_intakes(
    *,
    session: AsyncSession,
    messages: Sequence[IntakeMessage],
    now: datetime | None = None,
) -> list[Intake]:
    """`write_intakes` in this session, committed, with the tasks and turns loaded."""
    stamp = now or utcnow()
    if stamp.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")

    def write(sync_session: Session) -> list[IntakeRecord]:
        sync_session.flush()  # what the caller changed in this transaction is seen below
        return write_intakes(sync_session.connection(), messages, stamp)

    last: DBAPIError | None = None
    for _attempt in range(ATTEMPTS):
        try:
            records = await session.run_sync(write)
        except DBAPIError as exc:
            await session.rollback()
            if not _worth_retrying(exc):
                raise
            last = exc
            continue
        # Loaded in the same transaction: the objects outlive the commit, which then also
        # ends the reads (on SQLite every transaction holds the write lock).
        intakes = []
        for record in records:
            task = await session.get(Task, record.task_id, populate_existing=True)
            turn = await session.get(Turn, record.turn_id, populate_existing=True)
            assert task is not None and turn is not None, "recorded just above"
            intakes.append(Intake(task=task, turn=turn, created=record.created))
        await session.commit()
        return intakes
    raise RuntimeError(f"could not record the Slack messages after {ATTEMPTS} attempts") from last


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
