"""The durable turn queue: claims, leases, heartbeats, completion, release and recovery."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_engine, session_factory
from storage.models import TaskStatus, Turn, TurnStatus
from storage.queue import (
    MAX_ATTEMPTS,
    LeaseLost,
    claim_next_turn,
    complete_turn,
    expire_leases,
    fail_turn,
    heartbeat,
    release_turn,
)
from storage.tasks import BOT_ACTOR
from tests.storage.support import T0, ask, load_events, load_task, load_turn, minutes

LEASE = 300.0


async def claim(session: AsyncSession, owner: str = "worker-1", now: datetime = T0) -> Turn:
    """A claim, committed."""
    turn = await claim_next_turn(session=session, owner=owner, lease_seconds=LEASE, now=now)
    assert turn is not None, "expected a claimable turn"
    await session.commit()
    return turn


async def queue_thread(session: AsyncSession, *, thread: str, turns: int) -> list[int]:
    """A task with `turns` queued turns (the mention and its follow-ups); their ids."""
    ids = []
    for n in range(turns):
        intake = await ask(session, thread=thread, ts=f"{thread}{n}")
        assert intake.turn.id is not None
        ids.append(intake.turn.id)
    return ids


async def test_claim_takes_oldest_runnable_turn_with_a_lease(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for thread in ("1.1", "2.2", "3.3"):
        await ask(session, thread=thread)

    turn = await claim_next_turn(session=session, owner="worker-1", lease_seconds=LEASE, now=T0)
    await session.commit()

    assert turn is not None
    assert (turn.id, turn.task_id) == (1, 1)
    stored = await load_turn(sessions, 1)
    assert stored.status == TurnStatus.RUNNING
    assert stored.lease_owner == "worker-1"
    assert stored.lease_expires_at == T0 + timedelta(seconds=LEASE)
    assert stored.heartbeat_at == T0
    assert stored.started_at == T0
    assert (turn.status, turn.lease_owner) == (TurnStatus.RUNNING, "worker-1")
    task = await load_task(sessions, 1)
    assert task.status == TaskStatus.WORKING
    last = (await load_events(sessions, 1))[-1]
    assert (last.from_status, last.to_status, last.actor) == ("queued", "working", BOT_ACTOR)
    # The other tasks are untouched.
    assert (await load_task(sessions, 2)).status == TaskStatus.QUEUED


async def test_claims_go_oldest_first_across_tasks(session: AsyncSession) -> None:
    for thread in ("1.1", "2.2", "3.3"):
        await ask(session, thread=thread)

    claimed = [(await claim(session, owner=f"w{n}")).id for n in range(3)]

    assert claimed == [1, 2, 3]


async def test_claim_returns_none_when_queue_is_empty(session: AsyncSession) -> None:
    assert await claim_next_turn(session=session, owner="w", lease_seconds=LEASE) is None


async def test_claim_returns_none_when_every_turn_is_taken(session: AsyncSession) -> None:
    await ask(session, thread="1.1")
    await claim(session)

    assert await claim_next_turn(session=session, owner="w2", lease_seconds=LEASE) is None


async def test_a_claim_is_undone_when_its_transaction_is(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as setup:
        await ask(setup, thread="1.1")

    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            assert await claim_next_turn(session=session, owner="w1", lease_seconds=LEASE)
            raise RuntimeError("the use case failed after claiming")

    stored = await load_turn(sessions, 1)
    assert (stored.status, stored.lease_owner) == (TurnStatus.QUEUED, None)
    assert (await load_task(sessions, 1)).status == TaskStatus.QUEUED
    async with sessions.begin() as session:
        again = await claim_next_turn(session=session, owner="w2", lease_seconds=LEASE)
    assert again is not None and again.lease_owner == "w2"


async def test_follow_up_waits_while_first_turn_is_running(session: AsyncSession) -> None:
    await queue_thread(session, thread="1.1", turns=2)

    first = await claim(session, owner="w1")

    assert first.seq == 1
    assert await claim_next_turn(session=session, owner="w2", lease_seconds=LEASE) is None


async def test_other_tasks_run_while_a_follow_up_waits(session: AsyncSession) -> None:
    await queue_thread(session, thread="1.1", turns=2)
    await ask(session, thread="2.2")

    first = await claim(session, owner="w1")
    second = await claim(session, owner="w2")

    assert (first.task_id, first.seq) == (1, 1)
    assert (second.task_id, second.seq) == (2, 1)  # not task 1's turn 2


async def test_turns_of_a_task_are_claimed_in_seq_order_not_id_order(
    session: AsyncSession,
) -> None:
    first_id, second_id = await queue_thread(session, thread="1.1", turns=2)
    # Make the older row the later turn: only seq order may decide which runs first.
    for turn_id, seq in ((first_id, 99), (second_id, 1), (first_id, 2)):
        await session.exec(update(Turn).where(col(Turn.id) == turn_id).values(seq=seq))
    await session.commit()

    claimed = await claim(session, owner="w1")

    assert (claimed.id, claimed.seq) == (second_id, 1)
    assert await claim_next_turn(session=session, owner="w2", lease_seconds=LEASE) is None


@pytest.mark.parametrize("outcome", ["complete", "fail"])
async def test_follow_up_becomes_claimable_after_first_turn_finishes(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], outcome: str
) -> None:
    await queue_thread(session, thread="1.1", turns=2)
    first = await claim(session, owner="w1")
    assert first.id is not None
    if outcome == "complete":
        await complete_turn(
            session=session,
            turn_id=first.id,
            owner="w1",
            answer_text="done",
            task_status=TaskStatus.COMPLETED,
        )
    else:
        await fail_turn(session=session, turn_id=first.id, owner="w1", reason="model overloaded")

    second = await claim(session, owner="w2")

    assert (second.task_id, second.seq) == (1, 2)
    assert (await load_task(sessions, 1)).status == TaskStatus.WORKING


async def test_heartbeat_extends_the_lease(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None

    kept = await heartbeat(
        session=session, turn_id=turn.id, owner="w1", lease_seconds=LEASE, now=T0 + minutes(4)
    )
    await session.commit()

    assert kept
    stored = await load_turn(sessions, turn.id)
    assert stored.heartbeat_at == T0 + minutes(4)
    assert stored.lease_expires_at == T0 + minutes(4) + timedelta(seconds=LEASE)


async def test_heartbeat_from_wrong_owner_is_refused(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None

    kept = await heartbeat(
        session=session, turn_id=turn.id, owner="w2", lease_seconds=LEASE, now=T0 + minutes(4)
    )
    await session.commit()

    assert not kept
    stored = await load_turn(sessions, turn.id)
    assert stored.lease_owner == "w1"
    assert stored.lease_expires_at == T0 + timedelta(seconds=LEASE)


@pytest.mark.parametrize("how", ["completed", "failed", "released", "expired"])
async def test_heartbeat_for_a_turn_no_longer_running_is_refused(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], how: str
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None
    match how:
        case "completed":
            await complete_turn(session=session, turn_id=turn.id, owner="w1", answer_text="ok")
        case "failed":
            await fail_turn(session=session, turn_id=turn.id, owner="w1", reason="boom")
        case "released":
            await release_turn(session=session, turn_id=turn.id, owner="w1")
        case "expired":
            await expire_leases(session=session, now=T0 + timedelta(seconds=LEASE + 1))
    await session.commit()
    before = await load_turn(sessions, turn.id)

    kept = await heartbeat(
        session=session, turn_id=turn.id, owner="w1", lease_seconds=LEASE, now=T0 + minutes(9)
    )
    await session.commit()

    assert not kept
    after = await load_turn(sessions, turn.id)
    assert (after.status, after.heartbeat_at) == (before.status, before.heartbeat_at)


async def test_complete_turn_sets_answer_and_task_status_together(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None
    due = T0 + timedelta(days=2)

    done = await complete_turn(
        session=session,
        turn_id=turn.id,
        owner="w1",
        answer_text="Schema drafted; endpoints next.",
        task_status=TaskStatus.IN_PROGRESS,
        status_note="report: IN_PROGRESS",
        estimated_time="2 days",
        estimate_due_at=due,
        now=T0 + minutes(3),
    )
    await session.commit()

    assert done.status == TurnStatus.DONE
    stored = await load_turn(sessions, turn.id)
    assert stored.status == TurnStatus.DONE
    assert stored.answer_text == "Schema drafted; endpoints next."
    assert stored.finished_at == T0 + minutes(3)
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
    task = await load_task(sessions, 1)
    assert task.status == TaskStatus.IN_PROGRESS
    assert (task.estimated_time, task.estimate_due_at) == ("2 days", due)
    last = (await load_events(sessions, 1))[-1]
    assert (last.from_status, last.to_status) == ("working", "in_progress")
    assert (last.actor, last.note) == (BOT_ACTOR, "report: IN_PROGRESS")


@pytest.mark.parametrize(
    "reported", [TaskStatus.COMPLETED, TaskStatus.BLOCKED, TaskStatus.IN_PROGRESS]
)
async def test_a_queued_follow_up_keeps_the_task_queued_whatever_the_report_says(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], reported: TaskStatus
) -> None:
    # Asked again while the first turn ran: the board must show work pending, not a
    # finished or blocked task whose buttons offer Reopen or Mark done.
    first_id, second_id = await queue_thread(session, thread="1.1", turns=2)
    await claim(session, owner="w1")

    await complete_turn(
        session=session,
        turn_id=first_id,
        owner="w1",
        answer_text="Done with the first ask.",
        task_status=reported,
        status_note="waits on the vendor",
        now=T0 + minutes(3),
    )
    await session.commit()

    assert (await load_turn(sessions, first_id)).status == TurnStatus.DONE
    task = await load_task(sessions, 1)
    assert (task.status, task.status_reason) == (TaskStatus.QUEUED, None)
    last = (await load_events(sessions, 1))[-1]
    assert (last.from_status, last.to_status, last.actor) == ("working", "queued", BOT_ACTOR)
    assert (await claim(session, owner="w2")).id == second_id


async def test_fail_turn_keeps_the_reason_on_turn_and_task(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None
    reason = "The model was overloaded; ask again in a few minutes."

    await fail_turn(session=session, turn_id=turn.id, owner="w1", reason=reason, now=T0)
    await session.commit()

    stored = await load_turn(sessions, turn.id)
    assert (stored.status, stored.failure_reason) == (TurnStatus.FAILED, reason)
    assert stored.finished_at == T0
    assert stored.lease_owner is None
    task = await load_task(sessions, 1)
    assert (task.status, task.status_reason) == (TaskStatus.FAILED, reason)
    last = (await load_events(sessions, 1))[-1]
    assert (last.from_status, last.to_status, last.note) == ("working", "failed", reason)


@pytest.mark.parametrize("action", ["complete", "fail", "release"])
async def test_finishing_a_turn_held_by_another_worker_raises_lease_lost(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], action: str
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None
    turn_id = turn.id

    with pytest.raises(LeaseLost, match=f"turn {turn_id} is not held by w2"):
        match action:
            case "complete":
                await complete_turn(session=session, turn_id=turn_id, owner="w2", answer_text="x")
            case "fail":
                await fail_turn(session=session, turn_id=turn_id, owner="w2", reason="x")
            case "release":
                await release_turn(session=session, turn_id=turn_id, owner="w2")
    await session.rollback()

    stored = await load_turn(sessions, turn_id)
    assert (stored.status, stored.lease_owner, stored.answer_text) == ("running", "w1", None)
    assert (await load_task(sessions, 1)).status == TaskStatus.WORKING


async def test_worker_whose_lease_was_taken_over_cannot_complete(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as setup:
        await ask(setup)
    # Worker A keeps one session for the whole turn, so its identity map still says
    # "running, owner A" after recovery handed the turn to worker B.
    async with sessions() as worker_a:
        turn = await claim(worker_a, owner="A")
        assert turn.id is not None
        turn_id = turn.id
        async with sessions.begin() as recovery:
            await expire_leases(session=recovery, now=T0 + timedelta(seconds=LEASE + 1))
        async with sessions() as worker_b:
            taken = await claim(worker_b, owner="B")
            assert taken.id == turn_id

        with pytest.raises(LeaseLost):
            await complete_turn(session=worker_a, turn_id=turn_id, owner="A", answer_text="late")

    stored = await load_turn(sessions, turn_id)
    assert (stored.status, stored.lease_owner, stored.answer_text) == ("running", "B", None)


async def test_release_requeues_without_counting_an_attempt(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None

    await release_turn(session=session, turn_id=turn.id, owner="w1", now=T0 + minutes(1))
    await session.commit()

    stored = await load_turn(sessions, turn.id)
    assert (stored.status, stored.attempts) == (TurnStatus.QUEUED, 0)
    assert (stored.lease_owner, stored.lease_expires_at, stored.started_at) == (None, None, None)
    assert (await load_task(sessions, 1)).status == TaskStatus.QUEUED
    last = (await load_events(sessions, 1))[-1]
    assert (last.from_status, last.to_status, last.note) == (
        "working",
        "queued",
        "worker shut down",
    )
    again = await claim(session, owner="w2")
    assert again.id == turn.id


async def test_expire_leases_leaves_live_leases_alone(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None

    expired = await expire_leases(session=session, now=T0 + timedelta(seconds=LEASE - 1))

    assert (expired.requeued, expired.failed) == ([], [])
    assert (await load_turn(sessions, turn.id)).status == TurnStatus.RUNNING


async def test_expired_lease_goes_back_to_queue_with_an_attempt_counted(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    turn = await claim(session, owner="w1")
    assert turn.id is not None

    expired = await expire_leases(session=session, now=T0 + timedelta(seconds=LEASE + 1))
    await session.commit()

    assert [t.id for t in expired.requeued] == [turn.id]
    assert expired.failed == []
    stored = await load_turn(sessions, turn.id)
    assert (stored.status, stored.attempts, stored.lease_owner) == ("queued", 1, None)
    assert (await load_task(sessions, 1)).status == TaskStatus.QUEUED
    last = (await load_events(sessions, 1))[-1]
    assert (last.from_status, last.to_status, last.note) == ("working", "queued", "lease expired")
    assert (await claim(session, owner="w2")).id == turn.id


async def test_third_expired_lease_fails_turn_and_task(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ask(session)
    late = T0 + timedelta(seconds=LEASE + 1)
    outcomes = []
    for attempt in range(MAX_ATTEMPTS):
        turn = await claim(session, owner=f"w{attempt}")
        assert turn.id is not None
        outcomes.append(await expire_leases(session=session, now=late))
        await session.commit()

    assert [len(o.requeued) for o in outcomes] == [1, 1, 0]
    assert [len(o.failed) for o in outcomes] == [0, 0, 1]
    stored = await load_turn(sessions, 1)
    assert (stored.status, stored.attempts) == (TurnStatus.FAILED, 3)
    assert stored.failure_reason is not None
    assert "3 times" in stored.failure_reason
    task = await load_task(sessions, 1)
    assert (task.status, task.status_reason) == (TaskStatus.FAILED, stored.failure_reason)
    assert await claim_next_turn(session=session, owner="w9", lease_seconds=LEASE) is None


async def test_recovery_counts_attempts_from_the_database_not_a_cached_copy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Two replicas run recovery; each keeps its own long-lived session.
    late = T0 + timedelta(seconds=LEASE + 1)
    async with sessions() as setup:
        await ask(setup)
    results = []  # held, as a caller would: the turns stay in each session's identity map
    async with sessions() as recovery_1, sessions() as recovery_2:
        for recovery in (recovery_1, recovery_2, recovery_1):
            async with sessions() as worker:
                await claim(worker)
            results.append(await expire_leases(session=recovery, now=late))
            await recovery.commit()

    assert [[t.id for t in r.requeued] for r in results] == [[1], [1], []]
    assert [t.id for t in results[-1].failed] == [1]
    stored = await load_turn(sessions, 1)
    assert (stored.status, stored.attempts) == (TurnStatus.FAILED, 3)


async def test_database_refuses_a_second_running_turn_for_a_task(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first_id, second_id = await queue_thread(session, thread="1.1", turns=2)
    await claim(session, owner="w1")

    connection = await session.connection()
    with pytest.raises(IntegrityError, match="uq_turn_one_running_per_task|UNIQUE constraint"):
        await connection.execute(
            text("UPDATE turn SET status = 'running' WHERE id = :id"), {"id": second_id}
        )
    await session.rollback()

    assert (await load_turn(sessions, second_id)).status == TurnStatus.QUEUED
    assert (await load_turn(sessions, first_id)).status == TurnStatus.RUNNING


async def test_running_turns_of_different_tasks_are_allowed(session: AsyncSession) -> None:
    await ask(session, thread="1.1")
    await ask(session, thread="2.2")

    connection = await session.connection()
    await connection.execute(text("UPDATE turn SET status = 'running'"))
    await session.commit()

    assert await claim_next_turn(session=session, owner="w", lease_seconds=LEASE) is None


# Row locks are PostgreSQL's concern: SQLite has one writer, so no claim ever sees a half-claim.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgres_claim_skips_a_turn_another_replica_is_claiming(
    session: AsyncSession, database_url: str
) -> None:
    first_id, _second_id = await queue_thread(session, thread="1.1", turns=2)
    await ask(session, thread="2.2")
    # A claim that waited on the lock instead of skipping would hang this test (the lock is
    # held on this thread), so waiting is cut short and fails the test.
    impatient = create_engine(database_url, connect_args={"options": "-c lock_timeout=3000"})
    try:
        # Another replica is in the middle of claiming turn 1 (row locked, still queued).
        with psycopg.connect(database_url) as other:
            other.execute("SELECT id FROM turn WHERE id = %s FOR UPDATE", (first_id,))
            async with session_factory(impatient)() as replica:
                claimed = await claim(replica, owner="w2")
    finally:
        await impatient.dispose()

    # Neither turn 1 (locked) nor turn 2 (its predecessor is still queued): task 2's turn.
    assert (claimed.task_id, claimed.seq) == (2, 1)
