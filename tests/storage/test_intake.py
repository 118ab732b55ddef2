"""Intake: one task per Slack thread, one queued turn per message, retries recognised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.intake import TITLE_LENGTH
from storage.models import Task, TaskEvent, TaskStatus, Turn, TurnStatus
from storage.queue import claim_next_turn
from storage.tasks import apply_transition
from tests.storage.support import T0, ask, count, load_events, load_task, load_turn

THREAD = "1700000000.000100"


async def test_mention_creates_task_with_queued_turn_and_event(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session, thread=THREAD, user="U1", text="Design the orders API", now=T0)

    assert intake.created
    assert intake.task.ref == "T-1"
    assert intake.turn.id is not None
    # Read back through another session: the intake is committed before Slack is acked.
    task = await load_task(sessions, 1)
    assert (task.team_id, task.channel_id, task.thread_ts) == ("T1", "C1", THREAD)
    assert task.requester_id == "U1"
    assert task.status == TaskStatus.QUEUED
    assert task.request_text == "Design the orders API"
    turn = await load_turn(sessions, intake.turn.id)
    assert (turn.task_id, turn.seq, turn.status) == (1, 1, TurnStatus.QUEUED)
    assert (turn.message_ts, turn.user_id, turn.source) == (THREAD, "U1", "mention")
    assert turn.attempts == 0
    assert turn.lease_owner is None
    [event] = await load_events(sessions, 1)
    assert (event.from_status, event.to_status, event.actor) == (None, TaskStatus.QUEUED, "U1")
    assert event.note == "asked in Slack"


async def test_retried_mention_creates_one_task(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await ask(session, thread=THREAD)
    retry = await ask(session, thread=THREAD)

    assert not retry.created
    assert retry.turn.id == first.turn.id
    assert retry.task.id == first.task.id
    assert await count(sessions, Task) == 1
    assert await count(sessions, Turn) == 1
    assert await count(sessions, TaskEvent) == 1


async def test_mention_also_delivered_as_message_event_is_one_turn(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mention = await ask(session, thread=THREAD, source="mention")
    message = await ask(session, thread=THREAD, source="message", text="changed on the way")

    assert not message.created
    assert message.turn.id == mention.turn.id
    assert message.turn.source == "mention"
    assert message.turn.text == "Design the orders API"
    assert await count(sessions, Turn) == 1


async def test_follow_up_in_thread_is_next_turn_of_same_task(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await ask(session, thread=THREAD, ts=THREAD)
    follow_up = await ask(
        session, thread=THREAD, ts="1700000100.000200", user="U2", text="Add pagination"
    )

    assert follow_up.created
    assert follow_up.task.ref == "T-1"
    assert follow_up.task.id == first.task.id
    assert follow_up.turn.seq == 2
    assert follow_up.turn.user_id == "U2"
    assert await count(sessions, Task) == 1
    task = await load_task(sessions, 1)
    assert task.requester_id == "U1"  # the thread's asker stays the requester
    assert task.title == "Design the orders API"


@pytest.mark.parametrize(
    "path",
    [
        [TaskStatus.COMPLETED],
        [TaskStatus.BLOCKED],
        [TaskStatus.FAILED],
        [TaskStatus.WORKING, TaskStatus.IN_PROGRESS],
    ],
    ids=lambda path: path[-1].value,
)
async def test_follow_up_requeues_finished_or_waiting_task(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    path: list[TaskStatus],
) -> None:
    first = await ask(session, thread=THREAD)
    for step in path:
        apply_transition(session=session, task=first.task, to_status=step, actor="pmteam")
    settled = path[-1]

    follow_up = await ask(session, thread=THREAD, ts="1700000100.000200", user="U2", now=T0)

    assert follow_up.created
    assert follow_up.turn.seq == 2
    task = await load_task(sessions, 1)
    assert task.status == TaskStatus.QUEUED
    assert task.updated_at == T0
    last = (await load_events(sessions, 1))[-1]
    assert (last.from_status, last.to_status) == (settled, TaskStatus.QUEUED)
    assert last.actor == "U2"
    assert last.note == "follow-up in the thread"


async def test_follow_up_while_working_leaves_status(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session, thread=THREAD)
    claimed = await claim_next_turn(session=session, owner="worker-1", lease_seconds=60)
    assert claimed is not None
    await session.commit()
    events_before = len(await load_events(sessions, 1))

    follow_up = await ask(session, thread=THREAD, ts="1700000100.000200", user="U2")

    assert follow_up.created
    assert follow_up.turn.seq == 2
    assert follow_up.turn.status == TurnStatus.QUEUED
    assert (await load_task(sessions, 1)).status == TaskStatus.WORKING
    assert len(await load_events(sessions, 1)) == events_before


async def test_follow_up_while_queued_leaves_status(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session, thread=THREAD)

    await ask(session, thread=THREAD, ts="1700000100.000200", user="U2")

    assert (await load_task(sessions, 1)).status == TaskStatus.QUEUED
    assert len(await load_events(sessions, 1)) == 1


async def test_different_threads_make_different_tasks(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await ask(session, thread="1700000000.000100")
    second = await ask(session, thread="1700000000.000200")
    # The same thread ts in another channel or workspace is another thread.
    other_channel = await ask(session, thread="1700000000.000100", channel="C2")
    other_team = await ask(session, thread="1700000000.000100", team="T2")

    refs = [i.task.ref for i in (first, second, other_channel, other_team)]
    assert refs == ["T-1", "T-2", "T-3", "T-4"]
    assert all(i.created and i.turn.seq == 1 for i in (first, second, other_channel, other_team))
    assert await count(sessions, Task) == 4


async def test_title_is_first_non_empty_line(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    text = "\n   Design the orders API   \nIt needs pagination.\n"

    intake = await ask(session, text=text)

    assert intake.task.title == "Design the orders API"
    assert (await load_task(sessions, 1)).request_text == text


async def test_long_title_is_trimmed_to_120_chars_with_ellipsis(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first_line = "Build " + "the order service " * 20
    await ask(session, text=f"{first_line}\nsecond line")

    title = (await load_task(sessions, 1)).title
    assert len(title) <= TITLE_LENGTH
    assert title.endswith("…")
    assert first_line.startswith(title[:-1])
    assert not title[:-1].endswith(" ")  # cut words are not followed by a dangling space


async def test_title_of_exactly_120_chars_is_kept_whole(session: AsyncSession) -> None:
    line = "x" * TITLE_LENGTH

    intake = await ask(session, text=line)

    assert intake.task.title == line


async def test_blank_message_gets_placeholder_title(session: AsyncSession) -> None:
    intake = await ask(session, text="  \n \n")

    assert intake.task.title == "(no text)"


async def test_timestamps_come_back_timezone_aware_utc(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # A local time in UTC+2 is the same instant, stored and returned as UTC.
    local = datetime(2026, 3, 2, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    intake = await ask(session, now=local)
    assert intake.turn.id is not None

    task = await load_task(sessions, 1)
    turn = await load_turn(sessions, intake.turn.id)
    [event] = await load_events(sessions, 1)
    for stamp in (task.created_at, task.updated_at, turn.created_at, event.created_at):
        assert stamp.tzinfo is not None
        assert stamp.utcoffset() == timedelta(0)
        assert stamp == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def test_timestamp_columns_sort_by_instant(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # 10:00+05:00 is earlier than 06:00Z even though "10" sorts after "06" as text.
    await ask(session, thread="1.1", now=datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    await ask(
        session, thread="2.2", now=datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=5)))
    )

    async with sessions() as fresh:
        result = await fresh.exec(select(Task.thread_ts).order_by(col(Task.created_at)))
        assert list(result.all()) == ["2.2", "1.1"]


async def test_naive_timestamp_is_refused(session: AsyncSession) -> None:
    # Intake hands its timestamps to the driver itself; the column type still refuses them.
    with pytest.raises(ValueError, match="naive datetime"):
        await ask(session, now=datetime(2026, 3, 2, 9, 0))  # no zone: refused
