"""Handoffs as tracked work: made from stored reports, owned, decided, reminded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert
from storage.models import HandoffItem, HandoffOwner, HandoffStatus, Task, Visibility
from storage.types import utcnow


@dataclass(frozen=True)
class NewHandoff:
    """One item of a report's dependencies_handoffs, with its position in the list."""

    position: int
    kind: str
    description: str
    owner_kind: str = HandoffOwner.UNASSIGNED
    owner_id: str | None = None


def _same(description: str) -> str:
    return " ".join(description.split()).casefold()


async def add_handoffs(
    *,
    session: AsyncSession,
    task_id: int,
    report_id: int,
    turn_id: int,
    items: Sequence[NewHandoff],
    now: datetime | None = None,
) -> list[HandoffItem]:
    """Track a report's handoffs: one row per item, once per (report, position), so a retried
    turn adds none. An item the task already tracks (the same words, from an earlier report)
    is not added again; earlier ones a later report no longer lists are left as they are."""
    now = now or utcnow()
    earlier = await session.exec(
        select(HandoffItem.description).where(
            col(HandoffItem.task_id) == task_id, col(HandoffItem.report_id) != report_id
        )
    )
    known = {_same(description) for description in earlier.all()}
    for item in items:
        if _same(item.description) in known:
            continue
        known.add(_same(item.description))
        await session.exec(
            insert(session, HandoffItem)
            .values(
                task_id=task_id,
                report_id=report_id,
                turn_id=turn_id,
                position=item.position,
                kind=item.kind,
                description=item.description,
                owner_kind=item.owner_kind,
                owner_id=item.owner_id,
                status=HandoffStatus.OPEN,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[col(HandoffItem.report_id), col(HandoffItem.position)]
            )
        )
    return await report_handoffs(session=session, report_id=report_id)


async def report_handoffs(*, session: AsyncSession, report_id: int) -> list[HandoffItem]:
    found = await session.exec(
        select(HandoffItem)
        .where(col(HandoffItem.report_id) == report_id)
        .order_by(col(HandoffItem.position))
        .execution_options(populate_existing=True)
    )
    return list(found.all())


async def task_handoffs(*, session: AsyncSession, task_id: int) -> list[HandoffItem]:
    """Every handoff a task tracks, oldest first."""
    found = await session.exec(
        select(HandoffItem)
        .where(col(HandoffItem.task_id) == task_id)
        .order_by(col(HandoffItem.id))
        .execution_options(populate_existing=True)
    )
    return list(found.all())


async def get_handoff(
    *, session: AsyncSession, handoff_id: int, for_update: bool = False
) -> HandoffItem | None:
    return await session.get(
        HandoffItem, handoff_id, with_for_update=for_update, populate_existing=True
    )


async def decide_handoff(
    *,
    session: AsyncSession,
    handoff_id: int,
    status: HandoffStatus,
    decided_by: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Mark an open handoff done or declined; False when it was decided already."""
    decided = await session.exec(
        update(HandoffItem)
        .where(col(HandoffItem.id) == handoff_id, col(HandoffItem.status) == HandoffStatus.OPEN)
        .values(status=status, decided_by=decided_by, reason=reason, updated_at=now or utcnow())
    )
    return decided.rowcount == 1


async def assign_handoff(
    *,
    session: AsyncSession,
    handoff_id: int,
    owner_kind: HandoffOwner,
    owner_id: str | None,
    now: datetime | None = None,
) -> bool:
    """Give an open handoff a new owner (its earlier DM and reminder no longer apply)."""
    assigned = await session.exec(
        update(HandoffItem)
        .where(col(HandoffItem.id) == handoff_id, col(HandoffItem.status) == HandoffStatus.OPEN)
        .values(
            owner_kind=owner_kind,
            owner_id=owner_id,
            dm_channel=None,
            dm_ts=None,
            nudged_at=None,
            updated_at=now or utcnow(),
        )
    )
    return assigned.rowcount == 1


async def record_handoff_dm(
    *, session: AsyncSession, handoff_id: int, channel: str, ts: str
) -> None:
    await session.exec(
        update(HandoffItem)
        .where(col(HandoffItem.id) == handoff_id)
        .values(dm_channel=channel, dm_ts=ts)
    )


async def open_handoffs(
    *,
    session: AsyncSession,
    owner_id: str | None = None,
    viewer: str | None = None,
    channel_id: str | None = None,
    limit: int = 50,
) -> list[tuple[HandoffItem, Task]]:
    """Open handoffs (of one owner, or everyone's; of tasks asked in one channel), oldest
    first, with their tasks; with a `viewer` ("" for a channel's readers), none of a private
    task asked by someone else."""
    query = (
        select(HandoffItem, Task)
        .join(Task, col(Task.id) == col(HandoffItem.task_id))
        .where(col(HandoffItem.status) == HandoffStatus.OPEN)
    )
    if viewer is not None:
        query = query.where(
            or_(col(Task.visibility) != Visibility.PRIVATE, col(Task.requester_id) == viewer)
        )
    if owner_id is not None:
        query = query.where(col(HandoffItem.owner_id) == owner_id)
    if channel_id is not None:
        query = query.where(col(Task.channel_id) == channel_id)
    found = await session.exec(
        query.order_by(col(HandoffItem.created_at), col(HandoffItem.id)).limit(limit)
    )
    return [(handoff, task) for handoff, task in found.all()]


async def claim_handoff_nudges(
    *, session: AsyncSession, older_than: timedelta, now: datetime | None = None, limit: int = 50
) -> list[tuple[HandoffItem, Task]]:
    """Open handoffs of a person, older than `older_than`, never reminded: marked reminded
    now (in this transaction), so each owner is reminded of each once."""
    now = now or utcnow()
    found = await session.exec(
        select(HandoffItem, Task)
        .join(Task, col(Task.id) == col(HandoffItem.task_id))
        .where(
            col(HandoffItem.status) == HandoffStatus.OPEN,
            col(HandoffItem.owner_kind) == HandoffOwner.USER,
            col(HandoffItem.nudged_at).is_(None),
            col(HandoffItem.created_at) < now - older_than,
        )
        .order_by(col(HandoffItem.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=HandoffItem)
    )
    claimed: list[tuple[HandoffItem, Task]] = []
    for handoff, task in found.all():
        marked = await session.exec(
            update(HandoffItem)
            .where(col(HandoffItem.id) == handoff.id, col(HandoffItem.nudged_at).is_(None))
            .values(nudged_at=now)
        )
        if marked.rowcount == 1:
            claimed.append((handoff, task))
    return claimed
