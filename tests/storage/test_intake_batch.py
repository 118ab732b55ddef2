"""Group-committed intake: many Slack messages recorded in one transaction, in order."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.intake import IntakeMessage, record_intake, record_intakes
from storage.models import Task, TaskEvent, TaskStatus, Turn
from storage.tasks import apply_transition


def _message(ts: str, thread: str | None = None, user: str = "U1") -> IntakeMessage:
    return IntakeMessage(
        team_id="T1",
        channel_id="C1",
        thread_ts=thread or ts,
        message_ts=ts,
        user_id=user,
        text=f"request {ts}",
    )


async def test_a_batch_of_new_threads_makes_one_task_each(session: AsyncSession) -> None:
    intakes = await record_intakes(session=session, messages=[_message(f"{i}.1") for i in range(5)])
    assert [i.created for i in intakes] == [True] * 5
    assert [i.task.ref for i in intakes] == ["T-1", "T-2", "T-3", "T-4", "T-5"]
    assert all(i.turn.seq == 1 for i in intakes)
    events = (await session.exec(select(TaskEvent))).all()
    assert len(events) == 5


async def test_duplicates_inside_a_batch_get_the_first_turn(session: AsyncSession) -> None:
    first, again, other = await record_intakes(
        session=session, messages=[_message("1.1"), _message("1.1"), _message("2.1")]
    )
    assert first.created and not again.created and other.created
    assert again.turn.id == first.turn.id
    assert len((await session.exec(select(Turn))).all()) == 2


async def test_a_thread_and_its_follow_up_in_one_batch_are_turns_1_and_2(
    session: AsyncSession,
) -> None:
    opening, follow_up = await record_intakes(
        session=session, messages=[_message("1.1"), _message("1.2", thread="1.1", user="U2")]
    )
    assert opening.task.id == follow_up.task.id
    assert (opening.turn.seq, follow_up.turn.seq) == (1, 2)
    tasks = (await session.exec(select(Task))).all()
    assert len(tasks) == 1 and tasks[0].requester_id == "U1"


async def test_batch_mixes_recorded_messages_and_follow_ups_on_done_tasks(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        done = await record_intake(
            session=session,
            team_id="T1",
            channel_id="C1",
            thread_ts="1.1",
            message_ts="1.1",
            user_id="U1",
            text="first",
        )
        for step in (TaskStatus.WORKING, TaskStatus.COMPLETED):
            apply_transition(session=session, task=done.task, to_status=step, actor="pmteam")
    async with sessions.begin() as session:
        repeat, follow_up, fresh = await record_intakes(
            session=session,
            messages=[_message("1.1"), _message("1.5", thread="1.1", user="U2"), _message("9.1")],
        )
    assert not repeat.created and repeat.turn.id == done.turn.id
    assert follow_up.created and follow_up.turn.seq == 2
    assert fresh.created and fresh.task.ref == "T-2"
    async with sessions() as session:
        task = await session.get(Task, done.task.id)
        assert task is not None and task.status == TaskStatus.QUEUED
        requeue = (
            await session.exec(
                select(TaskEvent)
                .where(col(TaskEvent.task_id) == done.task.id)
                .order_by(col(TaskEvent.id).desc())
            )
        ).first()
        assert requeue is not None
        assert (requeue.from_status, requeue.to_status, requeue.actor) == (
            TaskStatus.COMPLETED,
            TaskStatus.QUEUED,
            "U2",
        )
