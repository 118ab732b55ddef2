"""The durable turn queue: claims with leases, heartbeats, completion and lease recovery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from storage.db import db_now, dialect_name
from storage.models import Task, TaskStatus, Turn, TurnStatus
from storage.tasks import BOT_ACTOR, apply_transition, can_transition

MAX_ATTEMPTS = 3


def _claimable_turns() -> SelectOfScalar[Turn]:
    """Queued turns that are next in their task and whose task has nothing running."""
    other = aliased(Turn)
    blocker = exists().where(
        col(other.task_id) == col(Turn.task_id),
        or_(
            col(other.status) == TurnStatus.RUNNING,
            and_(col(other.status) == TurnStatus.QUEUED, col(other.seq) < col(Turn.seq)),
        ),
    )
    return (
        select(Turn)
        .where(col(Turn.status) == TurnStatus.QUEUED, ~blocker)
        .order_by(col(Turn.id))
        .limit(1)
    )


async def claim_next_turn(
    *,
    session: AsyncSession,
    owner: str,
    lease_seconds: float,
    now: datetime | None = None,
) -> Turn | None:
    """Claim the oldest runnable turn for `owner`, or return None when there is none; the
    caller commits.

    PostgreSQL locks the candidate row with SKIP LOCKED so replicas never wait on each
    other; SQLite (one writer at a time) claims with a compare-and-set UPDATE. Either way
    the partial unique index on running turns refuses a second running turn for a task; that
    attempt is undone to its savepoint and the next candidate tried.
    """
    for _attempt in range(5):
        query = _claimable_turns()
        if dialect_name(session) == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Turn)
        candidate = (await session.exec(query)).first()
        if candidate is None:
            return None
        assert candidate.id is not None
        # Read the clock only now: the transaction may have waited for SQLite's write lock,
        # and a start time from before the wait can precede the previous turn's finish.
        claimed_at = now or await db_now(session)
        try:
            async with session.begin_nested():
                claimed = await _claim(
                    session=session,
                    turn=candidate,
                    owner=owner,
                    lease_seconds=lease_seconds,
                    now=claimed_at,
                )
        except IntegrityError:
            continue
        if claimed:
            return candidate
    return None


async def _claim(
    *, session: AsyncSession, turn: Turn, owner: str, lease_seconds: float, now: datetime
) -> bool:
    """Compare-and-set the queued turn to running for `owner` and its task to working."""
    result = await session.exec(
        update(Turn)
        .where(col(Turn.id) == turn.id, col(Turn.status) == TurnStatus.QUEUED)
        .values(
            status=TurnStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            started_at=now,
        )
    )
    if result.rowcount != 1:
        return False
    task = await session.get(Task, turn.task_id, populate_existing=True)
    assert task is not None
    if task.status != TaskStatus.WORKING and can_transition(task.status, TaskStatus.WORKING):
        apply_transition(
            session=session, task=task, to_status=TaskStatus.WORKING, actor=BOT_ACTOR, now=now
        )
    await session.refresh(turn)  # the UPDATE bypassed the copy this session holds
    return True


async def heartbeat(
    *,
    session: AsyncSession,
    turn_id: int,
    owner: str,
    lease_seconds: float,
    now: datetime | None = None,
) -> bool:
    """Extend the lease; False means the lease was lost and the work must stop."""
    now = now or await db_now(session)
    result = await session.exec(
        update(Turn)
        .where(
            col(Turn.id) == turn_id,
            col(Turn.lease_owner) == owner,
            col(Turn.status) == TurnStatus.RUNNING,
        )
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now)
    )
    return bool(result.rowcount == 1)


class LeaseLost(Exception):
    """The turn is no longer held by this worker (it expired and was recovered elsewhere)."""


async def _held_turn(*, session: AsyncSession, turn_id: int, owner: str) -> tuple[Turn, Task]:
    # populate_existing: the copy in this session's identity map may predate a lease
    # expiry and a claim by another worker; only the row in the database counts.
    turn = await session.get(Turn, turn_id, with_for_update=True, populate_existing=True)
    if turn is None or turn.status != TurnStatus.RUNNING or turn.lease_owner != owner:
        raise LeaseLost(f"turn {turn_id} is not held by {owner}")
    task = await session.get(Task, turn.task_id, populate_existing=True)
    assert task is not None
    return turn, task


async def complete_turn(
    *,
    session: AsyncSession,
    turn_id: int,
    owner: str,
    answer_text: str,
    task_status: TaskStatus | None = None,
    status_note: str | None = None,
    estimated_time: str | None = None,
    estimate_due_at: datetime | None = None,
    now: datetime | None = None,
) -> Turn:
    """Mark the turn done and, in the same transaction, set the task status from the report.

    When a follow-up turn of the task is already queued the task goes back to queued
    instead: there is work pending, whatever this turn's report says."""
    turn, task = await _held_turn(session=session, turn_id=turn_id, owner=owner)
    now = now or await db_now(session)  # read once the turn is locked, not before
    turn.status = TurnStatus.DONE
    turn.answer_text = answer_text
    turn.finished_at = now
    turn.lease_owner = None
    turn.lease_expires_at = None
    session.add(turn)
    if await _follow_up_queued(session=session, turn=turn):
        task_status, status_note = TaskStatus.QUEUED, "a follow-up is queued"
    if task_status is not None and task.status != task_status:
        apply_transition(
            session=session,
            task=task,
            to_status=task_status,
            actor=BOT_ACTOR,
            note=status_note,
            now=now,
        )
    if estimated_time is not None or task_status == TaskStatus.IN_PROGRESS:
        task.estimated_time = estimated_time
        task.estimate_due_at = estimate_due_at
        task.nudged_at = None
    session.add(task)
    return turn


async def _follow_up_queued(*, session: AsyncSession, turn: Turn) -> bool:
    found = await session.exec(
        select(Turn.id)
        .where(
            col(Turn.task_id) == turn.task_id,
            col(Turn.id) != turn.id,
            col(Turn.status) == TurnStatus.QUEUED,
        )
        .limit(1)
    )
    return found.first() is not None


async def fail_turn(
    *,
    session: AsyncSession,
    turn_id: int,
    owner: str,
    reason: str,
    now: datetime | None = None,
) -> Turn:
    """Mark the turn failed with a reason a person can read; the task goes to failed."""
    turn, task = await _held_turn(session=session, turn_id=turn_id, owner=owner)
    now = now or await db_now(session)  # read once the turn is locked, not before
    _mark_failed(session=session, turn=turn, task=task, reason=reason, now=now)
    return turn


def _mark_failed(
    *, session: AsyncSession, turn: Turn, task: Task, reason: str, now: datetime
) -> None:
    turn.status = TurnStatus.FAILED
    turn.failure_reason = reason
    turn.finished_at = now
    turn.lease_owner = None
    turn.lease_expires_at = None
    session.add(turn)
    if can_transition(task.status, TaskStatus.FAILED):
        apply_transition(
            session=session,
            task=task,
            to_status=TaskStatus.FAILED,
            actor=BOT_ACTOR,
            note=reason,
            now=now,
        )
        task.status_reason = reason


async def release_turn(
    *, session: AsyncSession, turn_id: int, owner: str, now: datetime | None = None
) -> Turn:
    """Give a claimed turn back to the queue untouched (shutdown before it could finish)."""
    turn, task = await _held_turn(session=session, turn_id=turn_id, owner=owner)
    now = now or await db_now(session)  # read once the turn is locked, not before
    _requeue(session=session, turn=turn, task=task, note="worker shut down", now=now)
    return turn


async def retry_turn(
    *, session: AsyncSession, turn_id: int, owner: str, note: str, now: datetime | None = None
) -> Turn:
    """Put a claimed turn back in the queue as a spent attempt (e.g. the model stalled), so
    another try happens but the attempt limit still holds."""
    turn, task = await _held_turn(session=session, turn_id=turn_id, owner=owner)
    now = now or await db_now(session)
    turn.attempts += 1
    _requeue(session=session, turn=turn, task=task, note=note, now=now)
    return turn


def _requeue(*, session: AsyncSession, turn: Turn, task: Task, note: str, now: datetime) -> None:
    turn.status = TurnStatus.QUEUED
    turn.lease_owner = None
    turn.lease_expires_at = None
    turn.started_at = None
    session.add(turn)
    if task.status == TaskStatus.WORKING:
        apply_transition(
            session=session,
            task=task,
            to_status=TaskStatus.QUEUED,
            actor=BOT_ACTOR,
            note=note,
            now=now,
        )


@dataclass(frozen=True)
class ExpiredLeases:
    requeued: list[Turn]
    failed: list[Turn]


async def expire_leases(
    *,
    session: AsyncSession,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> ExpiredLeases:
    """Put turns whose lease ran out back in the queue; after `max_attempts` they fail.

    Leases are set and compared by the database's clock (`db_now`), never a host's."""
    now = now or await db_now(session)
    query = (
        select(Turn)
        .where(Turn.status == TurnStatus.RUNNING, col(Turn.lease_expires_at) < now)
        .order_by(col(Turn.id))
        .execution_options(populate_existing=True)  # fresh `attempts`, not a cached copy
    )
    if dialect_name(session) == "postgresql":
        query = query.with_for_update(skip_locked=True)
    turns = list((await session.exec(query)).all())
    requeued: list[Turn] = []
    failed: list[Turn] = []
    for turn in turns:
        task = await session.get(Task, turn.task_id, populate_existing=True)
        assert task is not None
        turn.attempts += 1
        if turn.attempts >= max_attempts:
            reason = (
                f"I tried this {turn.attempts} times and each attempt stopped before it finished."
            )
            _mark_failed(session=session, turn=turn, task=task, reason=reason, now=now)
            failed.append(turn)
        else:
            _requeue(session=session, turn=turn, task=task, note="lease expired", now=now)
            requeued.append(turn)
    return ExpiredLeases(requeued=requeued, failed=failed)


async def queued_turn_count(*, session: AsyncSession) -> int:
    """How many turns wait for a worker (the `pmteam_queue_depth` gauge)."""
    found = await session.exec(
        select(func.count()).select_from(Turn).where(col(Turn.status) == TurnStatus.QUEUED)
    )
    return int(found.one())
