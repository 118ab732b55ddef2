"""Status services behind `/pm` and the App Home: who may read, periods, and the data to show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.budget import Budget, day_start
from bot.core.pm_grammar import Period
from bot.services.deps import Sessions
from bot.slack.blocks.home import HomeBoard
from storage.conventions import channels_with_conventions
from storage.models import Report, Task, TaskStatus
from storage.queries import (
    Reader,
    TaskDetail,
    TaskFilter,
    UsageSummary,
    blocked_tasks,
    count_by_status,
    latest_report,
    list_tasks,
    recent_reports,
    reports_in_period,
    spend_since,
    task_detail,
    tasks_for_user,
    usage_since,
)
from storage.tasks import unposted_reports
from storage.types import utcnow

PAGE_SIZE = 10


def period_start(period: Period, *, now: datetime, timezone: str) -> datetime:
    """The start of this calendar week (Monday) or month, midnight in the team's time zone."""
    local = now.astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.MONTH:
        start = midnight.replace(day=1)
    else:
        start = midnight - timedelta(days=midnight.weekday())
    return start.astimezone(ZoneInfo("UTC"))


@dataclass(frozen=True)
class StatusOverview:
    counts: dict[TaskStatus, int]
    mine: list[Task]


async def status_overview(*, sessions: Sessions, user_id: str) -> StatusOverview:
    async with sessions() as session:
        counts = await count_by_status(session=session)
        mine = await tasks_for_user(session=session, user_id=user_id, open_only=True, limit=10)
    return StatusOverview(counts=counts, mine=mine)


async def load_task_detail(*, sessions: Sessions, task_id: int) -> TaskDetail | None:
    async with sessions() as session:
        return await task_detail(session=session, task_id=task_id)


@dataclass(frozen=True)
class TaskPage:
    task_filter: TaskFilter
    tasks: list[Task]
    next_before_id: int | None  # where the next page starts; None on the last page


async def task_page(
    *,
    sessions: Sessions,
    task_filter: TaskFilter,
    before_id: int | None = None,
    page_size: int = PAGE_SIZE,
    reader: Reader | None = None,
) -> TaskPage:
    """One page, newest first; one extra row is read to know whether another page follows."""
    async with sessions() as session:
        tasks = await list_tasks(
            session=session,
            task_filter=task_filter,
            limit=page_size + 1,
            before_id=before_id,
            reader=reader,
        )
    more = len(tasks) > page_size
    tasks = tasks[:page_size]
    next_before = tasks[-1].id if more and tasks else None
    return TaskPage(task_filter=task_filter, tasks=tasks, next_before_id=next_before)


@dataclass(frozen=True)
class UsageReport:
    period: Period
    since: datetime
    usage: UsageSummary


async def usage_report(
    *, sessions: Sessions, period: Period, timezone: str, now: datetime | None = None
) -> UsageReport:
    since = period_start(period, now=now or utcnow(), timezone=timezone)
    async with sessions() as session:
        usage = await usage_since(session=session, since=since)
    return UsageReport(period=period, since=since, usage=usage)


async def report_for_repost(
    *, sessions: Sessions, task_id: int
) -> tuple[Task, Report | None] | None:
    """The task and its newest report; None when there is no such task."""
    async with sessions() as session:
        task = await session.get(Task, task_id)
        if task is None:
            return None
        return task, await latest_report(session=session, task_id=task_id)


async def home_board(
    *,
    sessions: Sessions,
    timezone: str,
    daily_budget: float | None = None,
    now: datetime | None = None,
) -> HomeBoard:
    """The part of the App Home that is the same for everyone (built once per refresh)."""
    now = now or utcnow()
    week_start = period_start(Period.WEEK, now=now, timezone=timezone)
    async with sessions() as session:
        today = None
        if daily_budget is not None:
            spent = await spend_since(session=session, since=day_start(now, timezone))
            today = Budget(limit=daily_budget, spent=spent)
        return HomeBoard(
            today=today,
            counts=await count_by_status(session=session),
            blocked=await blocked_tasks(session=session, limit=10),
            reports=await recent_reports(session=session, limit=10),
            red_flags=await reports_in_period(
                session=session, since=week_start, red_flags_only=True, limit=10
            ),
            usage=await usage_since(session=session, since=week_start),
            week_start=week_start,
            built_at=now,
            unposted=await unposted_reports(session=session, limit=5),
            conventions=await channels_with_conventions(session=session, limit=20),
        )


async def home_tasks(*, sessions: Sessions, user_id: str) -> list[Task]:
    async with sessions() as session:
        return await tasks_for_user(session=session, user_id=user_id, open_only=True, limit=10)
