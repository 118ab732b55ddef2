"""Standups and nudges in the database: exactly-once claims, what a standup covers, nudges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert
from storage.models import Report, Standup, Task, TaskStatus
from storage.queries import REPORTED, SHOWN_TO_ALL, UsageSummary, latest_reports, usage_since
from storage.types import utcnow


class StandupStatus(StrEnum):
    CLAIMED = "claimed"  # a process is composing and posting it
    POSTED = "posted"
    SKIPPED = "skipped"  # missed past the grace window, or empty with PMTEAM_STANDUP_SKIP_EMPTY


class ClaimResult(StrEnum):
    CLAIMED = "claimed"  # a fresh claim: nothing can have been posted for it yet
    RECLAIMED = "reclaimed"  # an earlier claim's lease ran out: it may have posted already
    BUSY = "busy"  # another process holds a live claim
    DONE = "done"  # posted or skipped already


@dataclass(frozen=True)
class StandupClaim:
    result: ClaimResult
    standup: Standup

    @property
    def held(self) -> bool:
        return self.result in (ClaimResult.CLAIMED, ClaimResult.RECLAIMED)


async def find_standup(*, session: AsyncSession, channel_id: str, period: str) -> Standup | None:
    result = await session.exec(
        select(Standup)
        .where(col(Standup.channel_id) == channel_id, col(Standup.period) == period)
        .execution_options(populate_existing=True)
    )
    return result.first()


async def claim_standup(
    *,
    session: AsyncSession,
    channel_id: str,
    period: str,
    owner: str,
    lease: timedelta,
    now: datetime | None = None,
) -> StandupClaim:
    """Claim the (channel, period) standup for `owner`, exactly once across processes.

    The unique (channel_id, period) key lets one INSERT win; a claim whose lease ran out
    (its process died) is taken over with a compare-and-set UPDATE. Both work the same on
    SQLite and PostgreSQL. The caller commits.
    """
    now = now or utcnow()
    row = Standup(
        channel_id=channel_id,
        period=period,
        status=StandupStatus.CLAIMED,
        lease_owner=owner,
        lease_expires_at=now + lease,
        created_at=now,
    )
    inserted = await session.exec(
        insert(session, Standup)
        .values(row.model_dump(exclude={"id"}))
        .on_conflict_do_nothing(index_elements=[col(Standup.channel_id), col(Standup.period)])
        .returning(col(Standup.id))
    )
    result: ClaimResult | None = ClaimResult.CLAIMED if inserted.first() is not None else None
    if result is None:
        taken = await session.exec(
            update(Standup)
            .where(
                col(Standup.channel_id) == channel_id,
                col(Standup.period) == period,
                col(Standup.status) == StandupStatus.CLAIMED,
                col(Standup.lease_expires_at) < now,
            )
            .values(lease_owner=owner, lease_expires_at=now + lease)
        )
        if taken.rowcount == 1:
            result = ClaimResult.RECLAIMED
    standup = await find_standup(session=session, channel_id=channel_id, period=period)
    assert standup is not None, "a standup row is never deleted"
    if result is None:
        result = ClaimResult.BUSY if standup.status == StandupStatus.CLAIMED else ClaimResult.DONE
    return StandupClaim(result, standup)


async def renew_standup_lease(
    *, session: AsyncSession, standup_id: int, owner: str, lease: timedelta, now: datetime
) -> bool:
    """Extend the claim just before posting; False means it was lost and must not be posted."""
    result = await session.exec(
        update(Standup)
        .where(
            col(Standup.id) == standup_id,
            col(Standup.lease_owner) == owner,
            col(Standup.status) == StandupStatus.CLAIMED,
        )
        .values(lease_expires_at=now + lease)
    )
    return bool(result.rowcount == 1)


async def release_standup(
    *, session: AsyncSession, standup_id: int, owner: str, now: datetime
) -> None:
    """Give a claim up (posting failed) so the next check may try again at once."""
    await session.exec(
        update(Standup)
        .where(
            col(Standup.id) == standup_id,
            col(Standup.lease_owner) == owner,
            col(Standup.status) == StandupStatus.CLAIMED,
        )
        .values(lease_expires_at=now)
    )


async def record_standup_posted(
    *,
    session: AsyncSession,
    standup_id: int,
    ts: str,
    covered_until: datetime,
    note: str | None = None,
) -> bool:
    """Mark a claimed standup posted. `posted_at` is the end of the time it covered, which is
    where the next standup in the channel starts."""
    values: dict[str, object] = {
        "status": StandupStatus.POSTED,
        "ts": ts,
        "posted_at": covered_until,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if note is not None:
        values["note"] = note
    result = await session.exec(
        update(Standup)
        .where(col(Standup.id) == standup_id, col(Standup.status) == StandupStatus.CLAIMED)
        .values(**values)
    )
    return bool(result.rowcount == 1)


async def record_standup_skipped(*, session: AsyncSession, standup_id: int, note: str) -> bool:
    result = await session.exec(
        update(Standup)
        .where(col(Standup.id) == standup_id, col(Standup.status) == StandupStatus.CLAIMED)
        .values(status=StandupStatus.SKIPPED, note=note, lease_owner=None, lease_expires_at=None)
    )
    return bool(result.rowcount == 1)


async def last_posted_standup(
    *, session: AsyncSession, channel_id: str, before: datetime | None = None
) -> Standup | None:
    """The channel's most recent posted standup: the next one covers the time since."""
    query = select(Standup).where(
        col(Standup.channel_id) == channel_id,
        col(Standup.status) == StandupStatus.POSTED,
        col(Standup.posted_at).is_not(None),
    )
    if before is not None:
        query = query.where(col(Standup.posted_at) <= before)
    result = await session.exec(query.order_by(col(Standup.posted_at).desc()).limit(1))
    return result.first()


# --- what a standup covers ----------------------------------------------------------------


@dataclass(frozen=True)
class StandupDigest:
    """The standup's facts for [since, until); tasks come with their latest report."""

    since: datetime
    until: datetime
    completed: list[tuple[Task, Report | None]]
    in_progress: list[tuple[Task, Report | None]]
    blocked: list[tuple[Task, Report | None]]
    red_flags: list[tuple[Report, Task]]
    handoffs: list[tuple[Report, Task]]
    usage: UsageSummary
    limit: int

    @property
    def is_empty(self) -> bool:
        return not (
            self.completed or self.in_progress or self.blocked or self.red_flags or self.handoffs
        )

    @property
    def tasks(self) -> list[Task]:
        """Every task the standup names, once each, in the order it names them."""
        seen: dict[int | None, Task] = {}
        for task, _ in (*self.completed, *self.in_progress, *self.blocked):
            seen.setdefault(task.id, task)
        for _, task in (*self.red_flags, *self.handoffs):
            seen.setdefault(task.id, task)
        return list(seen.values())


async def standup_digest(
    *,
    session: AsyncSession,
    since: datetime,
    until: datetime,
    channel_id: str | None = None,
    limit: int = 25,
) -> StandupDigest:
    """What happened in [since, until): all work, or the work asked in one channel.

    Completed tasks are those that finished in the period; in-progress and blocked tasks are
    all that are open now; red flags and handoffs come from reports filed in the period (the
    newest report of each task).
    """

    completed_q = select(Task).where(
        col(Task.status) == TaskStatus.COMPLETED,
        col(Task.updated_at) >= since,
        col(Task.updated_at) < until,
        SHOWN_TO_ALL,
    )
    blocked_q = select(Task).where(col(Task.status) == TaskStatus.BLOCKED, SHOWN_TO_ALL)
    if channel_id is not None:
        completed_q = completed_q.where(col(Task.channel_id) == channel_id)
        blocked_q = blocked_q.where(col(Task.channel_id) == channel_id)

    completed = list(
        (await session.exec(completed_q.order_by(col(Task.updated_at).desc()).limit(limit))).all()
    )
    in_progress = await _oldest_in_progress(session=session, channel_id=channel_id, limit=limit)
    blocked = list(
        (await session.exec(blocked_q.order_by(col(Task.updated_at)).limit(limit))).all()
    )
    red_flags, handoffs = await _period_flags_and_handoffs(
        session=session, since=since, until=until, channel_id=channel_id, limit=limit
    )
    reports = await latest_reports(
        session=session,
        task_ids=[t.id for t in (*completed, *in_progress, *blocked) if t.id is not None],
    )
    usage = await usage_since(session=session, since=since, until=until, channel_id=channel_id)
    return StandupDigest(
        since=since,
        until=until,
        completed=[(t, reports.get(t.id or 0)) for t in completed],
        in_progress=[(t, reports.get(t.id or 0)) for t in in_progress],
        blocked=[(t, reports.get(t.id or 0)) for t in blocked],
        red_flags=red_flags,
        handoffs=handoffs,
        usage=usage,
        limit=limit,
    )


async def _oldest_in_progress(
    *, session: AsyncSession, channel_id: str | None, limit: int
) -> list[Task]:
    """The `limit` oldest open tasks in progress (IN_PROGRESS or WORKING), oldest first.

    One ordered range of ix_task_status_id per status, merged here: an IN list would read and
    sort every task in progress (tens of thousands at scale) to find the oldest few. Ids
    follow creation, so the lowest ids of a status are its oldest tasks.
    """
    tasks: list[Task] = []
    for status in (TaskStatus.IN_PROGRESS, TaskStatus.WORKING):
        query = select(Task).where(col(Task.status) == status, SHOWN_TO_ALL)
        if channel_id is not None:
            query = query.where(col(Task.channel_id) == channel_id)
        rows = await session.exec(query.order_by(col(Task.id)).limit(limit))
        tasks += rows.all()
    # Oldest first: the longest-running work needs attention most.
    return sorted(tasks, key=lambda t: (t.created_at, t.id or 0))[:limit]


_REPORT_PAGE = 200


async def _period_flags_and_handoffs(
    *,
    session: AsyncSession,
    since: datetime,
    until: datetime,
    channel_id: str | None,
    limit: int,
) -> tuple[list[tuple[Report, Task]], list[tuple[Report, Task]]]:
    """Red flags and handoffs of the newest report of each task filed in [since, until).

    Red flags: that report has red flags. Handoffs: it names dependencies or handoffs and
    its task is not blocked (a blocked task's handoffs are shown with it, as what it waits
    on). At most `limit` of each, newest first.

    Reads the period's range of ix_report_created_flags newest first, a page at a time, and
    stops once both lists are full rather than loading every report of the period. The first
    report seen of a task is its newest; its older ones are skipped even when they match.
    """
    red_flags: list[tuple[Report, Task]] = []
    handoffs: list[tuple[Report, Task]] = []
    if limit <= 0:
        return red_flags, handoffs
    seen: set[int] = set()
    base = (
        select(Report, Task)
        .join(Task, col(Task.id) == col(Report.task_id))
        .where(col(Report.created_at) >= since, REPORTED, SHOWN_TO_ALL)
    )
    if channel_id is not None:
        base = base.where(col(Task.channel_id) == channel_id)
    after: tuple[datetime, int] | None = None  # the last (created_at, id) read: keyset paging
    while len(red_flags) < limit or len(handoffs) < limit:
        query = base
        if after is None:
            query = query.where(col(Report.created_at) < until)
        else:
            created_at, report_id = after
            query = query.where(
                col(Report.created_at) <= created_at,
                or_(col(Report.created_at) < created_at, col(Report.id) < report_id),
            )
        page = list(
            (
                await session.exec(
                    query.order_by(col(Report.created_at).desc(), col(Report.id).desc()).limit(
                        _REPORT_PAGE
                    )
                )
            ).all()
        )
        for report, task in page:
            if report.task_id in seen:
                continue
            seen.add(report.task_id)
            if report.red_flag_count > 0 and len(red_flags) < limit:
                red_flags.append((report, task))
            if (
                report.data.get("dependencies_handoffs")
                and task.status != TaskStatus.BLOCKED
                and len(handoffs) < limit
            ):
                handoffs.append((report, task))
        if len(page) < _REPORT_PAGE:
            break
        last = page[-1][0]
        assert last.id is not None
        after = (last.created_at, last.id)
    return red_flags, handoffs


# --- nudges -------------------------------------------------------------------------------


async def nudge_candidates(*, session: AsyncSession, now: datetime, limit: int = 50) -> list[Task]:
    """Tasks still IN_PROGRESS past their estimate that have not been nudged for it."""
    result = await session.exec(
        select(Task)
        .where(
            col(Task.status) == TaskStatus.IN_PROGRESS,
            col(Task.estimate_due_at) < now,
            col(Task.nudged_at).is_(None),
        )
        .order_by(col(Task.estimate_due_at))
        .limit(limit)
    )
    return list(result.all())


async def mark_nudged(*, session: AsyncSession, task_id: int, now: datetime) -> bool:
    """Claim the task's nudge (compare-and-set): True for exactly one caller per estimate."""
    result = await session.exec(
        update(Task)
        .where(
            col(Task.id) == task_id,
            col(Task.status) == TaskStatus.IN_PROGRESS,
            col(Task.estimate_due_at) < now,
            col(Task.nudged_at).is_(None),
        )
        .values(nudged_at=now)
    )
    return bool(result.rowcount == 1)


async def unmark_nudged(*, session: AsyncSession, task_id: int, nudged_at: datetime) -> None:
    """The nudge could not be posted: let the next run try again."""
    await session.exec(
        update(Task)
        .where(col(Task.id) == task_id, col(Task.nudged_at) == nudged_at)
        .values(nudged_at=None)
    )
