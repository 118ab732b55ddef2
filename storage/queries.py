"""Read queries behind `/pm status`, `/pm list`, the App Home board and the standup."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Subquery,
    and_,
    case,
    column,
    func,
    literal_column,
    or_,
    table,
    union_all,
)
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_name
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
    ToolCall,
    Turn,
    Visibility,
)
from storage.tool_calls import task_tool_calls

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
    tool_calls: list[ToolCall] = field(default_factory=list)  # the team tools it called


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
        tool_calls=await task_tool_calls(session=session, task_id=task_id),
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


async def turn_research(*, session: AsyncSession, turn_id: int) -> list[ResearchRequest]:
    """A turn's research requests, in the order they were made."""
    found = await session.exec(
        select(ResearchRequest)
        .where(col(ResearchRequest.turn_id) == turn_id)
        .order_by(col(ResearchRequest.id))
    )
    return list(found.all())


async def research_done(*, session: AsyncSession, turn_id: int) -> tuple[int, int]:
    """How many research requests a turn made, and how many distinct live sources came back
    (from the stored requests, not from anything the model said about them)."""
    requests = await turn_research(session=session, turn_id=turn_id)
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


# Words that tell no task from another: dropped from a search.
STOP_WORDS = frozenset(
    {"the", "and", "for", "with", "how", "what", "why", "our", "are", "was", "this", "that"}
    | {"from", "into", "about", "can", "should", "not", "but", "any", "has", "have", "use", "via"}
)
MAX_SEARCH_TERMS = 8
SUMMARY_CHARS = 200
# Migration 0008's index expression, spelled the same: PostgreSQL uses an expression index
# only for the expression it was built on. 'english' stems, so "indexes" finds "index"; the
# punctuation that joins words in code ("orders.created_at") is read as spaces.
TASK_DOCUMENT: ColumnElement[Any] = literal_column(
    "to_tsvector('english', translate("
    "coalesce(task.title, '') || ' ' || coalesce(task.request_text, ''), '._-/', '    '))"
)
JOINERS_AS_SPACES = str.maketrans("._-/", "    ")
SEARCH_CONFIG: ColumnElement[Any] = literal_column("'english'::regconfig")
# Migration 0008's FTS5 table over task titles and requests (absent where SQLite has no FTS5).
FTS_TABLE = table("task_fts", column("rowid"))


@dataclass(frozen=True)
class RelatedTaskRow:
    """A task found by `search_tasks`: how many of the query's terms it matched, and its
    latest report in one line (None before its first report)."""

    task: Task
    matched_terms: int
    summary: str | None


def search_terms(query: str) -> list[str]:
    """The query's distinct words of three or more characters, lower-cased, without stop words
    (at most MAX_SEARCH_TERMS). A word may hold '.', '-' or '_' ("user_id", "v1.2")."""
    terms: list[str] = []
    for word in re.findall(r"[\w.-]+", query.lower()):
        term = word.strip("._-")
        if len(term) >= 3 and term not in STOP_WORDS and term not in terms:
            terms.append(term)
    return terms[:MAX_SEARCH_TERMS]


async def search_tasks(
    *,
    session: AsyncSession,
    query: str,
    limit: int = 5,
    exclude_task_id: int | None = None,
    viewer: str | None = None,
) -> list[RelatedTaskRow]:
    """Past tasks whose title or request holds the query's words: those matching the most
    terms first, then the newest; a private task only for its requester (`viewer`).

    PostgreSQL matches through migration 0008's full-text index and SQLite through its FTS5
    table, both stemmed; a SQLite without FTS5 matches words anywhere in the text (LIKE)."""
    terms = search_terms(query)
    if not terms:
        return []
    if dialect_name(session) == "postgresql":
        matched = _postgres_matches(terms)
    elif await _has_fts_table(session):
        matched = _fts5_matches(terms)
    else:
        matched = _like_matches(terms)
    stmt = select(Task, matched.c.terms).join(matched, col(Task.id) == matched.c.task_id)
    stmt = stmt.where(visible_to(viewer))
    if exclude_task_id is not None:
        stmt = stmt.where(col(Task.id) != exclude_task_id)
    result = await session.exec(
        stmt.order_by(matched.c.terms.desc(), col(Task.id).desc()).limit(limit)
    )
    found: list[tuple[Task, int]] = list(result.all())
    reports = await latest_reports(
        session=session, task_ids=[task.id for task, _ in found if task.id is not None]
    )
    return [
        RelatedTaskRow(
            task=task,
            matched_terms=int(terms_matched),
            summary=report_summary(reports[task.id].data) if task.id in reports else None,
        )
        for task, terms_matched in found
    ]


def _postgres_matches(terms: Sequence[str]) -> Subquery:
    """(task_id, terms) of the tasks matching any term. The OR of all terms is what the GIN
    index finds; only those rows are scored, one `@@` per term."""
    # phraseto_tsquery reads its text as words, never as tsquery syntax: "a:* | !b" is safe.
    # A term the tokenizer splits ("user_id") must match as the phrase "user <-> id".
    queries = [
        func.phraseto_tsquery(SEARCH_CONFIG, term.translate(JOINERS_AS_SPACES)) for term in terms
    ]
    any_term: ColumnElement[Any] = queries[0]
    for query in queries[1:]:
        any_term = any_term.op("||")(query)  # tsquery || tsquery: either
    score = _sum_of(case((TASK_DOCUMENT.op("@@")(query), 1), else_=0) for query in queries)
    return (
        sa_select(col(Task.id).label("task_id"), score.label("terms"))
        .where(TASK_DOCUMENT.op("@@")(any_term))
        .subquery("matched")
    )


def _fts5_matches(terms: Sequence[str]) -> Subquery:
    """(task_id, terms): one FTS5 lookup per term, its hits counted by task."""
    hits = union_all(
        *(
            sa_select(FTS_TABLE.c.rowid.label("task_id")).where(
                literal_column(FTS_TABLE.name).match(_fts5_phrase(term))
            )
            for term in terms
        )
    ).subquery("hits")
    return (
        sa_select(hits.c.task_id, func.count().label("terms"))
        .group_by(hits.c.task_id)
        .subquery("matched")
    )


def _fts5_phrase(term: str) -> str:
    # A quoted string is an FTS5 phrase: operators (OR, NOT, NEAR), '*', ':', '^' and
    # parentheses inside it are text. A quote is doubled to stand for itself.
    return '"' + term.replace('"', '""') + '"'


def _like_matches(terms: Sequence[str]) -> Subquery:
    """(task_id, terms) by substring: SQLite without FTS5. No stemming, and every task's text
    is read, which is what the FTS5 table avoids."""
    text_of = func.lower(col(Task.title) + " " + col(Task.request_text))
    contains = [text_of.contains(term, autoescape=True) for term in terms]
    score = _sum_of(case((holds, 1), else_=0) for holds in contains)
    return (
        sa_select(col(Task.id).label("task_id"), score.label("terms"))
        .where(or_(*contains))
        .subquery("matched")
    )


def _sum_of(parts: Iterable[ColumnElement[int]]) -> ColumnElement[int]:
    total, *rest = parts
    for part in rest:
        total = total + part
    return total


async def _has_fts_table(session: AsyncSession) -> bool:
    master = table("sqlite_master", column("type"), column("name"))
    found = await session.exec(
        select(master.c.name).where(master.c.type == "table", master.c.name == FTS_TABLE.name)
    )
    return found.first() is not None


def report_summary(data: dict[str, Any]) -> str | None:
    """A stored report in one line: its status and task, with its first key deliverable, or
    what it is blocked on."""
    task = data.get("task")
    if not isinstance(task, str) or not task.strip():
        return None
    summary = " ".join(task.split())
    status = data.get("status")
    if isinstance(status, str) and status:
        summary = f"{status}: {summary}"
    deliverable = _first_description(data.get("key_deliverables"))
    if deliverable:
        summary += f"; delivers {deliverable}"
    if status == "BLOCKED" and (blocker := _first_description(data.get("dependencies_handoffs"))):
        summary += f"; blocked on {blocker}"
    return summary if len(summary) <= SUMMARY_CHARS else summary[: SUMMARY_CHARS - 1] + "…"


def _first_description(items: Any) -> str | None:
    if not isinstance(items, list) or not items:
        return None
    first = items[0]
    description = first.get("description") if isinstance(first, dict) else first
    return " ".join(description.split()) if isinstance(description, str) else None


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
