"""The task status state machine: allowed moves are recorded, everything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.intake import REQUEUE_ON_FOLLOW_UP
from storage.models import Task, TaskStatus
from storage.tasks import (
    ALLOWED_TRANSITIONS,
    IllegalTransition,
    can_transition,
    describe_status,
    record_task_event,
)
from tests.storage.support import (
    T0,
    ask,
    force_status,
    load_events,
    load_task,
    minutes,
    move_task,
)

ALLOWED = [(src, dst) for src, targets in ALLOWED_TRANSITIONS.items() for dst in sorted(targets)]
REFUSED = [(src, dst) for src in TaskStatus for dst in TaskStatus if (src, dst) not in ALLOWED]


def edge_id(edge: tuple[TaskStatus, TaskStatus]) -> str:
    return f"{edge[0].value}->{edge[1].value}"


def test_every_status_has_a_rule() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(TaskStatus)


@pytest.mark.parametrize("edge", ALLOWED, ids=edge_id)
async def test_allowed_transition_moves_task_and_records_event(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    edge: tuple[TaskStatus, TaskStatus],
) -> None:
    src, dst = edge
    await ask(session)
    await force_status(session, 1, src)

    moved = await move_task(session, 1, dst, actor="U7", note="because", now=T0)

    assert moved.status == dst
    task = await load_task(sessions, 1)
    assert task.status == dst
    assert task.updated_at == T0
    events = await load_events(sessions, 1)
    assert len(events) == 2  # intake, then this move
    event = events[-1]
    assert (event.kind, event.from_status, event.to_status) == ("status", src, dst)
    assert (event.actor, event.note, event.created_at) == ("U7", "because", T0)


@pytest.mark.parametrize("edge", REFUSED, ids=edge_id)
async def test_refused_transition_raises_and_changes_nothing(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    edge: tuple[TaskStatus, TaskStatus],
) -> None:
    src, dst = edge
    await ask(session, now=T0)
    await force_status(session, 1, src)

    with pytest.raises(IllegalTransition) as caught:
        await move_task(session, 1, dst, actor="U7")

    assert (caught.value.from_status, caught.value.to_status) == (src, dst)
    assert not session.new and not session.dirty  # nothing half-done left to commit
    await session.rollback()
    task = await load_task(sessions, 1)
    assert task.status == src
    assert task.updated_at == T0
    assert len(await load_events(sessions, 1)) == 1


async def test_illegal_move_message_names_task_and_both_statuses(session: AsyncSession) -> None:
    await ask(session)
    await force_status(session, 1, TaskStatus.COMPLETED)

    with pytest.raises(IllegalTransition) as caught:
        await move_task(session, 1, TaskStatus.BLOCKED, actor="U7")

    assert str(caught.value) == "T-1 is completed; it can't be moved to blocked."


async def test_move_to_current_status_says_already(session: AsyncSession) -> None:
    await ask(session)
    await force_status(session, 1, TaskStatus.COMPLETED)

    with pytest.raises(IllegalTransition, match=r"^T-1 is already completed\.$"):
        await move_task(session, 1, TaskStatus.COMPLETED, actor="U7")


async def test_queued_cannot_jump_to_in_progress(session: AsyncSession) -> None:
    await ask(session)

    with pytest.raises(IllegalTransition, match="T-1 is queued; it can't be moved to in progress"):
        await move_task(session, 1, TaskStatus.IN_PROGRESS, actor="U7")


async def test_acknowledgement_is_recorded_without_changing_status(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session, now=T0)
    await force_status(session, 1, TaskStatus.BLOCKED)

    event = await record_task_event(
        session=session,
        task_id=1,
        kind="acknowledged",
        actor="UPM",
        note="seen, chasing creds",
        now=T0 + minutes(5),
    )
    await session.commit()

    assert event.id is not None
    task = await load_task(sessions, 1)
    assert task.status == TaskStatus.BLOCKED
    assert task.updated_at == T0
    last = (await load_events(sessions, 1))[-1]
    assert (last.kind, last.actor, last.note) == ("acknowledged", "UPM", "seen, chasing creds")
    assert (last.from_status, last.to_status) == (None, None)
    assert last.created_at == T0 + minutes(5)


async def test_blocking_stores_reason_and_leaving_blocked_clears_it(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)

    await move_task(session, 1, TaskStatus.BLOCKED, note="needs read access to the orders DB")
    blocked = await load_task(sessions, 1)
    await move_task(session, 1, TaskStatus.QUEUED, actor="U1")
    unblocked = await load_task(sessions, 1)

    assert blocked.status == TaskStatus.BLOCKED
    assert blocked.status_reason == "needs read access to the orders DB"
    assert unblocked.status == TaskStatus.QUEUED
    assert unblocked.status_reason is None


# Pure properties of the state machine (no database).

statuses = st.sampled_from(list(TaskStatus))


@given(st.lists(statuses, max_size=60))
def test_random_walk_only_uses_allowed_edges(attempts: list[TaskStatus]) -> None:
    current = TaskStatus.QUEUED
    path = [current]
    for target in attempts:
        if can_transition(current, target):
            current = target
            path.append(current)
    for src, dst in zip(path, path[1:], strict=False):
        assert dst in ALLOWED_TRANSITIONS[src]
        assert src != dst


@given(statuses)
def test_no_status_moves_to_itself(status: TaskStatus) -> None:
    assert not can_transition(status, status)
    assert status not in ALLOWED_TRANSITIONS[status]


@given(statuses, statuses)
def test_can_transition_accepts_plain_strings(src: TaskStatus, dst: TaskStatus) -> None:
    # Rows hold the status as a plain string; the check must read it the same way.
    assert can_transition(src.value, dst) == can_transition(src, dst)


@given(statuses, statuses)
def test_refusal_message_is_readable(src: TaskStatus, dst: TaskStatus) -> None:
    if can_transition(src, dst):
        return
    task = Task(
        id=42,
        team_id="T1",
        channel_id="C1",
        thread_ts="1.1",
        requester_id="U1",
        title="Design the orders API",
        request_text="Design the orders API",
        status=src,
    )
    error = IllegalTransition(task, dst)
    message = str(error)
    assert message.startswith("T-42 is ")
    assert describe_status(src) in message
    assert describe_status(dst) in message
    assert "_" not in message
    assert "TaskStatus" not in message


def test_every_status_can_be_reached_from_queued() -> None:
    reached = {TaskStatus.QUEUED}
    frontier = [TaskStatus.QUEUED]
    while frontier:
        for target in ALLOWED_TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(TaskStatus)


def test_a_follow_up_can_requeue_every_status_it_requeues() -> None:
    # record_intake moves these to queued on a follow-up; a refusal there would lose a message.
    for status in REQUEUE_ON_FOLLOW_UP:
        assert can_transition(status, TaskStatus.QUEUED)
    # A lease that runs out or a worker that shuts down puts a working task back.
    assert can_transition(TaskStatus.WORKING, TaskStatus.QUEUED)
