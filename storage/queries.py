"""Read queries behind `/pm status`, `/pm list`, the App Home board and the standup."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    OPEN_STATUSES,
    Feedback,
    LLMCall,
    Report,
    ReportKind,
    ResearchRequest,
    Task,
    TaskCountDelta,
    TaskEvent,
    TaskStatus,
    Turn,
    Visibility,
)

# Reports of backend work: a conversational turn's report is kept, but shown nowhere.
REPORTED = col(Report.kind) == ReportKind.BACKEND_WORK
# Tasks anyone may see listed: not kept private by their requester.
SHOWN_TO_ALL = col(Task.visibility) != Visibility.PRIVATE


def visible_to(viewer: str | None) -> ColumnElement[bool]:
    if viewer is None:
        return SHOWN_TO_ALL
    return or_(SHOWN_TO_ALL, col(Task.requester_id) == viewer)


@dataclass(frozen=True)
class Reader:
    """Who is reading, for the rule of docs/architecture.md "Who sees a task": a task is
    readable by its requester, by the PMs unless it is still private, and, when it was asked
    in a channel, by that channel's members (`channels`)."""

    user_id: str
    is_pm: bool = False
    channels: frozenset[str] = frozenset()


def readable_by(reader: Reader) -> ColumnElement[bool]:
    allowed: list[ColumnElement[bool]] = [col(Task.requester_id) == reader.user_id]
    if reader.is_pm:
        allowed.append(SHOWN_TO_ALL)
    if reader.channels:
        allowed.append(
            and_(
                col(Task.visibility) == Visibility.CHANNEL,
                col(Task.channel_id).in_(sorted(reader.channels)),
            )
        )
    return or_(*allowed)


def may_read(task: Task, reader: Reader) -> bool:
    """The same rule for one task already loaded."""
    if task.requester_id == reader.user_id:
        return True
    if reader.is_pm and task.visibility != Visibility.PRIVATE:
        return True
    return task.visibility == Visibility.CHANNEL and task.channel_id in reader.channels


async def count_by_status(*, session: AsyncSession) -> dict[TaskStatus, int]:
    """How many tasks are in each status (every status present, zero when none).

    Sums `task_count_delta` (kept by triggers on `task`) instead of scanning the tasks;
    housekeeping keeps that table short (`compact_task_counts`).
    """
    rows = await session.exec(
        select(TaskCountDelta.status, func.sum(TaskCountDelta.delta)).group_by(
            col(TaskCountDelta.status)
        )
    )
    counts = dict.fromkeys(TaskStatus, 0)
    for status, total in rows.all():
        counts[TaskStatus(status)] = int(total or 0)
    return counts


class ListKind(StrEnum):
    OPEN = "open"
    BLOCKED = "blocked"
    DONE = "done"
    MINE = "mine"
    USER = "user"
    CHANNEL = "channel"


@dataclass(frozen=True)
class TaskFilter:
    kind: ListKind = ListKind.OPEN
    user_id: str | None = None  # for MINE and USER
    channel_id: str | None = None  # for CHANNEL


async def list_tasks(
    *,
    session: AsyncSession,
    task_filter: TaskFilter,
    limit: int = 10,
    before_id: int | None = None,
    reader: Reader | None = None,
) -> list[Task]:
    """Newest first, keyset-paginated by id (pass the last id seen as `before_id`); only the
    tasks `reader` may read, when given."""
    query = select(Task)
    if reader is not None:
        query = query.where(readable_by(reader))
    match task_filter.kind:
        case ListKind.OPEN:
            query = query.where(col(Task.status).in_(sorted(OPEN_STATUSES)))
        case ListKind.BLOCKED:
            query = query.where(col(Task.status) == TaskStatus.BLOCKED)
        case ListKind.DONE:
            query = query.where(col(Task.status) == TaskStatus.COMPLETED)
        case ListKind.MINE | ListKind.USER:
            query = query.where(col(Task.requester_id) == task_filter.user_id)
        case ListKind.CHANNEL:
            query = query.where(col(Task.channel_id) == task_filter.channel_id)
    if before_id is not None:
        query = query.where(col(Task.id) < before_id)
    result = await session.exec(query.order_by(col(Task.id).desc()).limit(limit))
    return list(result.all())


async def tasks_for_user(
    *, session: AsyncSession, user_id: str, open_only: bool = True, limit: int = 10
) -> list[Task]:
    query = select(Task).where(col(Task.requester_id) == user_id)
    if open_only:
        query = query.where(col(Task.status).in_(sorted(OPEN_STATUSES)))
    result = await session.exec(query.order_by(col(Task.id).desc()).limit(limit))
    return list(result.all())


@dataclass(frozen=True)
class TaskDetail:
    task: Task
    events: list[TaskEvent]
    turns: list[Turn]
    last_report: Report | None
    research: list[ResearchRequest]
    cost_usd: float
    tokens: int
    # Each finished turn's report kind (backend_work | conversation); a turn without one
    # made no report (it failed, or was stopped).
    report_kinds: dict[int, str] = field(default_factory=dict)
    ratings: dict[str, int] = field(default_factory=dict)  # good | bad -> count


async def task_detail(*, session: AsyncSession, task_id: int) -> TaskDetail | None:
    task = await session.get(Task, task_id)
    if task is None:
        return None
    events = await session.exec(
        select(TaskEvent).where(col(TaskEvent.task_id) == task_id).order_by(col(TaskEvent.id))
    )
    turns = await session.exec(
        select(Turn).where(col(Turn.task_id) == task_id).order_by(col(Turn.seq))
    )
    last_report = await latest_report(session=session, task_id=task_id)
    research = await session.exec(
        select(ResearchRequest)
        .where(col(ResearchRequest.task_id) == task_id)
        .order_by(col(ResearchRequest.id))
    )
    usage = await session.exec(
        select(
            func.coalesce(func.sum(LLMCall.cost_usd), 0.0),
            func.coalesce(
                func.sum(
                    LLMCall.input_tokens
                    + LLMCall.output_tokens
                    + LLMCall.cache_read_tokens
                    + LLMCall.cache_write_tokens
                ),
                0,
            ),
        ).where(col(LLMCall.task_id) == task_id)
    )
    cost, tokens = usage.one()
    kinds = await session.exec(
        select(Report.turn_id, Report.kind).where(col(Report.task_id) == task_id)
    )
    ratings = await session.exec(
        select(Feedback.rating, func.count())
        .where(col(Feedback.task_id) == task_id)
        .group_by(col(Feedback.rating))
    )
    return TaskDetail(
        task=task,
        events=list(events.all()),
        turns=list(turns.all()),
        last_report=last_report,
        research=list(research.all()),
        cost_usd=float(cost),
        tokens=int(tokens),
        report_kinds=dict(kinds.all()),
        ratings={rating: int(count) for rating, count in ratings.all()},
    )


async def latest_report(*, session: AsyncSession, task_id: int) -> Report | None:
    result = await session.exec(
        select(Report)
        .where(col(Report.task_id) == task_id, REPORTED)
        .order_by(col(Report.id).desc())
    )
    return result.first()


async def first_reported_task(*, session: AsyncSession, task_id: int) -> str | None:
    """How the task's first report put it in one line: a card keeps it as the task's name."""
    found = await session.exec(
        select(Report)
        .where(col(Report.task_id) == task_id, REPORTED)
        .order_by(col(Report.id))
        .limit(1)
    )
    first = found.first()
    task = first.data.get("task") if first is not None else None
    return task if isinstance(task, str) and task else None


async def recent_reports(
    *, session: AsyncSession, limit: int = 10, since: datetime | None = None
) -> list[tuple[Report, Task]]:
    """The newest reports with their tasks (the App Home's "last 10 reports")."""
    query = (
        select(Report, Task)
        .join(Task, col(Task.id) == col(Report.task_id))
        .where(REPORTED, SHOWN_TO_ALL)
    )
    if since is not None:
        query = query.where(col(Report.created_at) >= since)
    result = await session.exec(query.order_by(col(Report.id).desc()).limit(limit))
    return list(result.all())


async def blocked_tasks(*, session: AsyncSession, limit: int = 20) -> list[Task]:
    result = await session.exec(
        select(Task)
        .where(col(Task.status) == TaskStatus.BLOCKED, SHOWN_TO_ALL)
        .order_by(col(Task.updated_at).desc())
        .limit(limit)
    )
    return list(result.all())


@dataclass(frozen=True)
class UsageRow:
    agent: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    web_searches: int
    cost_usd: float

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass(frozen=True)
class UsageSummary:
    rows: list[UsageRow] = field(default_factory=list)
    ratings: dict[str, int] = field(default_factory=dict)  # 👍/👎 on answers: good | bad

    @property
    def cost_usd(self) -> float:
        return sum(row.cost_usd for row in self.rows)

    @property
    def web_searches(self) -> int:
        return sum(row.web_searches for row in self.rows)

    @property
    def tokens(self) -> int:
        return sum(row.prompt_tokens + row.output_tokens for row in self.rows)

    @property
    def cache_share(self) -> float:
        """The share of prompt tokens served from the cache."""
        prompt = sum(row.prompt_tokens for row in self.rows)
        return sum(row.cache_read_tokens for row in self.rows) / prompt if prompt else 0.0


async def research_done(*, session: AsyncSession, turn_id: int) -> tuple[int, int]:
    """How many research requests a turn made, and how many distinct live sources came back
    (from the stored requests, not from anything the model said about them)."""
    found = await session.exec(
        select(ResearchRequest).where(col(ResearchRequest.turn_id) == turn_id)
    )
    requests = list(found.all())
    urls = {
        str(source.get("url"))
        for request in requests
        if request.live_sources
        for source in request.sources
        if isinstance(source, dict) and source.get("url")
    }
    return len(requests), len(urls)


async def spend_since(
    *, session: AsyncSession, since: datetime, user_id: str | None = None
) -> float:
    """What the model calls since `since` cost, in USD, from the ledger (every replica writes
    it, so a cap read from here holds across them): all of them, or those made for one
    person's turns."""
    query = select(func.coalesce(func.sum(col(LLMCall.cost_usd)), 0.0)).where(
        col(LLMCall.created_at) >= since
    )
    if user_id is not None:
        query = query.join(Turn, col(Turn.id) == col(LLMCall.turn_id)).where(
            col(Turn.user_id) == user_id
        )
    return float((await session.exec(query)).one())


async def usage_since(
    *,
    session: AsyncSession,
    since: datetime,
    until: datetime | None = None,
    channel_id: str | None = None,
) -> UsageSummary:
    """Tokens, web searches and cost by agent and model over a period: of every model call,
    or of those made for tasks asked in one channel."""
    # Nine columns: more than sqlmodel.select's typed overloads take, so plain SQLAlchemy.
    query = sa_select(
        col(LLMCall.agent),
        col(LLMCall.model),
        func.count(),
        func.sum(col(LLMCall.input_tokens)),
        func.sum(col(LLMCall.output_tokens)),
        func.sum(col(LLMCall.cache_read_tokens)),
        func.sum(col(LLMCall.cache_write_tokens)),
        func.sum(col(LLMCall.web_searches)),
        func.sum(col(LLMCall.cost_usd)),
    ).where(col(LLMCall.created_at) >= since)
    if until is not None:
        query = query.where(col(LLMCall.created_at) < until)
    if channel_id is not None:
        query = query.join(Task, col(Task.id) == col(LLMCall.task_id)).where(
            col(Task.channel_id) == channel_id
        )
    # Past what SQLModel's `exec` types, so through the session's connection.
    result = await (await session.connection()).execute(
        query.group_by(col(LLMCall.agent), col(LLMCall.model)).order_by(
            col(LLMCall.agent), col(LLMCall.model)
        )
    )
    rated = select(Feedback.rating, func.count()).where(col(Feedback.created_at) >= since)
    if until is not None:
        rated = rated.where(col(Feedback.created_at) < until)
    if channel_id is not None:
        rated = rated.join(Task, col(Task.id) == col(Feedback.task_id)).where(
            col(Task.channel_id) == channel_id
        )
    ratings = await session.exec(rated.group_by(col(Feedback.rating)))
    return _usage_summary(result.all(), {rating: int(n) for rating, n in ratings.all()})


def _usage_summary(
    rows: Iterable[Sequence[Any]], ratings: dict[str, int] | None = None
) -> UsageSummary:
    """Rows of (agent, model, calls, input, output, cache read, cache write, searches, cost)."""
    return UsageSummary(
        rows=[
            UsageRow(
                agent=agent,
                model=model,
                calls=int(calls),
                input_tokens=int(inp or 0),
                output_tokens=int(out or 0),
                cache_read_tokens=int(cread or 0),
                cache_write_tokens=int(cwrite or 0),
                web_searches=int(searches or 0),
                cost_usd=float(cost or 0.0),
            )
            for agent, model, calls, inp, out, cread, cwrite, searches, cost in rows
        ],
        ratings=ratings or {},
    )


async def latest_reports(*, session: AsyncSession, task_ids: Sequence[int]) -> dict[int, Report]:
    """The newest report of each of these tasks, by task id."""
    if not task_ids:
        return {}
    newest = (
        select(func.max(Report.id))
        .where(col(Report.task_id).in_(task_ids), REPORTED)
        .group_by(col(Report.task_id))
    )
    result = await session.exec(select(Report).where(col(Report.id).in_(newest)))
    return {report.task_id: report for report in result.all()}


async def search_tasks(
    *,
    session: AsyncSession,
    query: str,
    limit: int = 5,
    exclude_task_id: int | None = None,
    viewer: str | None = None,
) -> list[Task]:
    """Past tasks whose title or request mentions the query's words, newest first; a private
    task only for its requester (`viewer`)."""
    words: list[str] = re.findall(r"[\w.-]{3,}", query.lower())[:6]
    if not words:
        return []
    matches = [
        or_(
            func.lower(col(Task.title)).contains(word, autoescape=True),
            func.lower(col(Task.request_text)).contains(word, autoescape=True),
        )
        for word in words
    ]
    stmt = select(Task).where(or_(*matches), visible_to(viewer))
    if exclude_task_id is not None:
        stmt = stmt.where(col(Task.id) != exclude_task_id)
    result = await session.exec(stmt.order_by(col(Task.id).desc()).limit(limit))
    return list(result.all())


async def task_events(
    *, session: AsyncSession, task_id: int, since: datetime | None = None
) -> list[TaskEvent]:
    """A task's history, oldest first (from `since` on, when given)."""
    query = select(TaskEvent).where(col(TaskEvent.task_id) == task_id)
    if since is not None:
        query = query.where(col(TaskEvent.created_at) >= since)
    result = await session.exec(query.order_by(col(TaskEvent.id)))
    return list(result.all())


async def reports_in_period(
    *,
    session: AsyncSession,
    since: datetime,
    until: datetime | None = None,
    red_flags_only: bool = False,
    limit: int = 200,
) -> list[tuple[Report, Task]]:
    """Reports filed in [since, until) with their tasks, newest first.

    Ordered by time, not id, so the scan is the period's range of ix_report_created_flags
    and stops at its start even when fewer than `limit` reports match.
    """
    query = (
        select(Report, Task)
        .join(Task, col(Task.id) == col(Report.task_id))
        .where(col(Report.created_at) >= since, REPORTED, SHOWN_TO_ALL)
    )
    if until is not None:
        query = query.where(col(Report.created_at) < until)
    if red_flags_only:
        query = query.where(col(Report.red_flag_count) > 0)
    result = await session.exec(query.order_by(col(Report.created_at).desc()).limit(limit))
    return list(result.all())
