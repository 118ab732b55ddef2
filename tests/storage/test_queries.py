"""Read queries behind /pm status, /pm list, task detail, the App Home and the standup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_engine, session_factory
from storage.housekeeping import purge_task_text
from storage.intake import Intake
from storage.models import LLMCall, Task, TaskStatus, Visibility
from storage.queries import (
    ListKind,
    RelatedTaskRow,
    TaskFilter,
    blocked_tasks,
    count_by_status,
    list_tasks,
    recent_reports,
    report_summary,
    reports_in_period,
    search_tasks,
    search_terms,
    task_detail,
    tasks_for_user,
    usage_since,
)
from storage.records import record_llm_call, save_report, save_research
from tests.storage.support import T0, ask, file_report, minutes, move_task, report_data

# The state machine's way from queued to each status.
PATHS: dict[TaskStatus, list[TaskStatus]] = {
    TaskStatus.QUEUED: [],
    TaskStatus.WORKING: [TaskStatus.WORKING],
    TaskStatus.IN_PROGRESS: [TaskStatus.WORKING, TaskStatus.IN_PROGRESS],
    TaskStatus.BLOCKED: [TaskStatus.WORKING, TaskStatus.BLOCKED],
    TaskStatus.COMPLETED: [TaskStatus.WORKING, TaskStatus.COMPLETED],
    TaskStatus.FAILED: [TaskStatus.WORKING, TaskStatus.FAILED],
}


async def make_task(
    session: AsyncSession,
    thread: str,
    status: TaskStatus,
    *,
    user: str = "U1",
    channel: str = "C1",
    at: datetime = T0,
) -> Intake:
    """A task asked at `at` and moved to `status`, its last move stamped `at` too."""
    intake = await ask(session, thread=thread, user=user, channel=channel, now=at)
    assert intake.task.id is not None
    for step in PATHS[status]:
        await move_task(session, intake.task.id, step, now=at)
    return intake


def llm_call(
    *,
    agent: str = "engineer",
    model: str = "claude-sonnet-5-5",
    task_id: int | None = None,
    at: datetime = T0,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read: int = 0,
    cache_write: int = 0,
    searches: int = 0,
    cost: float = 0.0,
) -> LLMCall:
    return LLMCall(
        task_id=task_id,
        agent=agent,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        web_searches=searches,
        cost_usd=cost,
        created_at=at,
    )


def ids(tasks: Sequence[Task]) -> list[int | None]:
    return [task.id for task in tasks]


async def test_count_by_status_on_empty_db_lists_every_status_as_zero(
    session: AsyncSession,
) -> None:
    counts = await count_by_status(session=session)

    assert counts == dict.fromkeys(TaskStatus, 0)


async def test_count_by_status_counts_each_status(session: AsyncSession) -> None:
    await make_task(session, "1.1", TaskStatus.QUEUED)
    await make_task(session, "2.2", TaskStatus.QUEUED)
    await make_task(session, "3.3", TaskStatus.BLOCKED)
    await make_task(session, "4.4", TaskStatus.COMPLETED)

    counts = await count_by_status(session=session)

    assert counts == {
        TaskStatus.QUEUED: 2,
        TaskStatus.WORKING: 0,
        TaskStatus.IN_PROGRESS: 0,
        TaskStatus.BLOCKED: 1,
        TaskStatus.COMPLETED: 1,
        TaskStatus.FAILED: 0,
    }
    assert all(isinstance(key, TaskStatus) for key in counts)


@pytest.fixture
async def board(session: AsyncSession) -> dict[str, int]:
    """One task in every status, from two people in two channels; their ids by name."""
    specs = [
        ("queued", TaskStatus.QUEUED, "U1", "C1"),
        ("working", TaskStatus.WORKING, "U2", "C1"),
        ("in_progress", TaskStatus.IN_PROGRESS, "U1", "C2"),
        ("blocked", TaskStatus.BLOCKED, "U2", "C2"),
        ("completed", TaskStatus.COMPLETED, "U1", "C1"),
        ("failed", TaskStatus.FAILED, "U1", "C2"),
    ]
    made = {}
    for n, (name, status, user, channel) in enumerate(specs):
        intake = await make_task(session, f"{n}.0", status, user=user, channel=channel)
        assert intake.task.id is not None
        made[name] = intake.task.id
    return made


@pytest.mark.parametrize(
    ("task_filter", "expected"),
    [
        (TaskFilter(kind=ListKind.OPEN), ["blocked", "in_progress", "working", "queued"]),
        (TaskFilter(kind=ListKind.BLOCKED), ["blocked"]),
        (TaskFilter(kind=ListKind.DONE), ["completed"]),
        (
            TaskFilter(kind=ListKind.MINE, user_id="U1"),
            ["failed", "completed", "in_progress", "queued"],
        ),
        (TaskFilter(kind=ListKind.USER, user_id="U2"), ["blocked", "working"]),
        (
            TaskFilter(kind=ListKind.CHANNEL, channel_id="C2"),
            ["failed", "blocked", "in_progress"],
        ),
    ],
    ids=["open", "blocked", "done", "mine", "user", "channel"],
)
async def test_list_tasks_filters_by_kind_newest_first(
    session: AsyncSession,
    board: dict[str, int],
    task_filter: TaskFilter,
    expected: list[str],
) -> None:
    tasks = await list_tasks(session=session, task_filter=task_filter)

    assert ids(tasks) == [board[name] for name in expected]


async def test_list_tasks_pages_with_before_id(session: AsyncSession) -> None:
    for n in range(5):
        await make_task(session, f"{n}.0", TaskStatus.QUEUED)
    open_tasks = TaskFilter(kind=ListKind.OPEN)

    pages = []
    before: int | None = None
    for _ in range(5):  # bounded: a cursor that does not advance must fail, not hang
        page = await list_tasks(session=session, task_filter=open_tasks, limit=2, before_id=before)
        if not page:
            break
        pages.append(ids(page))
        before = page[-1].id

    assert pages == [[5, 4], [3, 2], [1]]


async def test_list_tasks_page_skips_filtered_out_tasks(session: AsyncSession) -> None:
    for n, status in enumerate(
        [TaskStatus.BLOCKED, TaskStatus.COMPLETED, TaskStatus.BLOCKED, TaskStatus.QUEUED]
    ):
        await make_task(session, f"{n}.0", status)

    page = await list_tasks(
        session=session, task_filter=TaskFilter(kind=ListKind.BLOCKED), limit=5, before_id=3
    )

    assert ids(page) == [1]


async def test_tasks_for_user_shows_their_open_tasks(
    session: AsyncSession, board: dict[str, int]
) -> None:
    open_only = await tasks_for_user(session=session, user_id="U1")
    everything = await tasks_for_user(session=session, user_id="U1", open_only=False)
    limited = await tasks_for_user(session=session, user_id="U1", open_only=False, limit=2)
    stranger = await tasks_for_user(session=session, user_id="U404")

    assert ids(open_only) == [board["in_progress"], board["queued"]]
    assert ids(everything) == [
        board["failed"],
        board["completed"],
        board["in_progress"],
        board["queued"],
    ]
    assert ids(limited) == [board["failed"], board["completed"]]
    assert stranger == []


async def test_task_detail_of_unknown_task_is_none(session: AsyncSession) -> None:
    assert await task_detail(session=session, task_id=404) is None


async def test_task_detail_gathers_history_turns_reports_research_and_usage(
    session: AsyncSession,
) -> None:
    first = await make_task(session, "1.1", TaskStatus.IN_PROGRESS)
    other = await make_task(session, "2.2", TaskStatus.QUEUED)
    follow_up = await ask(session, thread="1.1", ts="1.2", user="U2", text="Add pagination")
    assert first.task.id is not None and other.task.id is not None
    task_id = first.task.id
    await file_report(session, first, status="IN_PROGRESS", at=T0)
    newest = await file_report(session, follow_up, status="COMPLETED", at=T0 + minutes(5))
    await save_research(
        session=session,
        task_id=task_id,
        turn_id=first.turn.id,
        objective="Cursor pagination in Postgres",
        request={"question": "keyset vs offset"},
        findings="Keyset pagination stays fast on deep pages.",
        sources=[{"url": "https://www.postgresql.org/docs/", "title": "PostgreSQL docs"}],
        live_sources=True,
        web_searches=2,
    )
    for call in (
        llm_call(task_id=task_id, input_tokens=100, output_tokens=50, cost=0.25),
        llm_call(task_id=task_id, cache_read=1000, cache_write=200, cost=0.5, agent="researcher"),
        llm_call(task_id=other.task.id, input_tokens=7777, cost=9.0),
        llm_call(task_id=None, input_tokens=8888, cost=9.0),
    ):
        await record_llm_call(session=session, call=call)

    detail = await task_detail(session=session, task_id=task_id)

    assert detail is not None
    assert detail.task.id == task_id
    assert [(e.from_status, e.to_status) for e in detail.events] == [
        (None, "queued"),
        ("queued", "working"),
        ("working", "in_progress"),
        ("in_progress", "queued"),  # the follow-up
    ]
    assert [(t.seq, t.user_id) for t in detail.turns] == [(1, "U1"), (2, "U2")]
    assert detail.last_report is not None
    assert (detail.last_report.id, detail.last_report.status) == (newest.id, "COMPLETED")
    assert [r.objective for r in detail.research] == ["Cursor pagination in Postgres"]
    assert detail.cost_usd == pytest.approx(0.75)
    assert detail.tokens == 100 + 50 + 1000 + 200
    assert isinstance(detail.tokens, int)


async def test_task_detail_without_usage_costs_nothing(session: AsyncSession) -> None:
    await make_task(session, "1.1", TaskStatus.QUEUED)

    detail = await task_detail(session=session, task_id=1)

    assert detail is not None
    assert (detail.cost_usd, detail.tokens) == (0.0, 0)
    assert (detail.last_report, detail.research) == (None, [])


async def test_recent_reports_newest_first_with_their_tasks(session: AsyncSession) -> None:
    intakes = [await make_task(session, f"{n}.0", TaskStatus.COMPLETED) for n in range(4)]
    for n, intake in enumerate(intakes):
        await file_report(session, intake, at=T0 + minutes(n))

    latest_two = await recent_reports(session=session, limit=2)
    since = await recent_reports(session=session, since=T0 + minutes(2))

    assert [(r.turn_id, t.id) for r, t in latest_two] == [(4, 4), (3, 3)]
    assert [r.created_at for r, _ in since] == [T0 + minutes(3), T0 + minutes(2)]


async def test_reports_in_period_within_since_and_until(session: AsyncSession) -> None:
    day = timedelta(days=1)
    spec = [
        ("before", 2, T0 - minutes(1)),
        ("at_since", 1, T0),
        ("inside_no_flags", 0, T0 + minutes(30)),
        ("inside", 3, T0 + minutes(60)),
        ("at_until", 1, T0 + day),
    ]
    made = {}
    for n, (name, flags, at) in enumerate(spec):
        intake = await make_task(session, f"{n}.0", TaskStatus.COMPLETED)
        made[name] = (await file_report(session, intake, red_flags=flags, at=at)).id

    bounded = await reports_in_period(
        session=session, since=T0, until=T0 + day, red_flags_only=True
    )
    open_ended = await reports_in_period(session=session, since=T0, red_flags_only=True)
    every_report = await reports_in_period(session=session, since=T0, until=T0 + day)

    assert [r.id for r, _ in bounded] == [made["inside"], made["at_since"]]
    assert [r.id for r, _ in open_ended] == [made["at_until"], made["inside"], made["at_since"]]
    assert all(task.id == report.task_id for report, task in open_ended)
    assert [r.id for r, _ in every_report] == [
        made["inside"],
        made["inside_no_flags"],
        made["at_since"],
    ]


async def test_blocked_tasks_most_recently_blocked_first(session: AsyncSession) -> None:
    await make_task(session, "1.1", TaskStatus.BLOCKED, at=T0)
    await make_task(session, "2.2", TaskStatus.COMPLETED, at=T0 + minutes(1))
    await make_task(session, "3.3", TaskStatus.BLOCKED, at=T0 + minutes(2))
    await make_task(session, "4.4", TaskStatus.QUEUED, at=T0 + minutes(3))

    blocked = await blocked_tasks(session=session)

    assert ids(blocked) == [3, 1]


async def test_usage_since_groups_by_agent_and_model(session: AsyncSession) -> None:
    sonnet, haiku = "claude-sonnet-5-5", "claude-haiku-5-5"
    calls = [
        llm_call(input_tokens=100, output_tokens=10, cache_read=300, cost=0.5, at=T0),
        llm_call(input_tokens=50, output_tokens=5, cache_write=50, cost=0.25, at=T0 + minutes(1)),
        llm_call(agent="researcher", model=haiku, input_tokens=40, searches=3, cost=0.125),
        llm_call(agent="engineer", model=haiku, input_tokens=10, output_tokens=1, cost=0.0625),
        llm_call(input_tokens=99999, cost=100.0, at=T0 - minutes(1)),  # before the period
        llm_call(input_tokens=99999, cost=100.0, at=T0 + timedelta(days=7)),  # after it
    ]
    for call in calls:
        await record_llm_call(session=session, call=call)

    usage = await usage_since(session=session, since=T0, until=T0 + timedelta(days=7))

    assert [(r.agent, r.model, r.calls) for r in usage.rows] == [
        ("engineer", haiku, 1),
        ("engineer", sonnet, 2),
        ("researcher", haiku, 1),
    ]
    engineer_sonnet = usage.rows[1]
    assert (engineer_sonnet.input_tokens, engineer_sonnet.output_tokens) == (150, 15)
    assert (engineer_sonnet.cache_read_tokens, engineer_sonnet.cache_write_tokens) == (300, 50)
    assert engineer_sonnet.cost_usd == pytest.approx(0.75)
    assert usage.rows[2].web_searches == 3
    assert usage.web_searches == 3
    assert usage.cost_usd == pytest.approx(0.9375)
    prompt = 150 + 300 + 50 + 40 + 10
    assert usage.tokens == prompt + 15 + 1
    assert usage.cache_share == pytest.approx(300 / prompt)


async def test_usage_since_without_until_runs_to_now(session: AsyncSession) -> None:
    await record_llm_call(session=session, call=llm_call(input_tokens=5, at=T0 + minutes(1)))

    usage = await usage_since(session=session, since=T0)

    assert [(r.agent, r.input_tokens) for r in usage.rows] == [("engineer", 5)]


async def test_usage_of_an_empty_period_is_zero(session: AsyncSession) -> None:
    usage = await usage_since(session=session, since=T0)

    assert usage.rows == []
    assert (usage.cost_usd, usage.tokens, usage.web_searches, usage.cache_share) == (0, 0, 0, 0.0)


def found(rows: Sequence[RelatedTaskRow]) -> list[int | None]:
    return [row.task.id for row in rows]


async def test_search_tasks_matches_title_or_request_words_newest_first(
    session: AsyncSession,
) -> None:
    await ask(session, thread="1.1", text="Design the Orders API\nwith cursor pagination")
    await ask(session, thread="2.2", text="Fix the login page")
    await ask(session, thread="3.3", text="Speed up orders export")
    await ask(session, thread="4.4", text="Billing webhooks\nRetry failed PAGINATION calls")

    by_word = await search_tasks(session=session, query="ORDERS")
    by_request_text = await search_tasks(session=session, query="pagination")
    any_word = await search_tasks(session=session, query="login or webhooks")

    assert found(by_word) == [3, 1]
    assert found(by_request_text) == [4, 1]
    assert found(any_word) == [4, 2]


async def test_search_tasks_ranks_by_terms_matched_then_newest(session: AsyncSession) -> None:
    await ask(session, thread="1.1", text="Orders API with cursor pagination")
    await ask(session, thread="2.2", text="Export orders through the API")
    await ask(session, thread="3.3", text="Cursor pagination for the orders API")
    await ask(session, thread="4.4", text="Pagination of invoices")
    await ask(session, thread="5.5", text="Fix the login page")

    rows = await search_tasks(session=session, query="orders API cursor pagination", limit=10)

    assert [(row.task.id, row.matched_terms) for row in rows] == [(3, 4), (1, 4), (2, 2), (4, 1)]


async def test_search_tasks_counts_each_term_once_however_often_it_appears(
    session: AsyncSession,
) -> None:
    await ask(session, thread="1.1", text="Orders API")
    await ask(session, thread="2.2", text="Orders, orders, orders: archive old orders")

    rows = await search_tasks(session=session, query="orders api")

    assert [(row.task.id, row.matched_terms) for row in rows] == [(1, 2), (2, 1)]


async def test_search_tasks_limits_and_excludes_the_current_task(session: AsyncSession) -> None:
    for n in range(4):
        await ask(session, thread=f"{n}.0", text=f"orders change {n}")

    rows = await search_tasks(session=session, query="orders", limit=2, exclude_task_id=4)

    assert found(rows) == [3, 2]


async def test_search_tasks_shows_a_private_task_only_to_its_requester(
    session: AsyncSession,
) -> None:
    await ask(session, thread="1.1", user="U1", text="Orders API in a channel")
    private = await ask(session, thread="2.2", user="U2", text="Orders API asked in a DM")
    await session.exec(
        update(Task).where(col(Task.id) == private.task.id).values(visibility=Visibility.PRIVATE)
    )
    await session.commit()

    assert found(await search_tasks(session=session, query="orders", viewer="U1")) == [1]
    assert found(await search_tasks(session=session, query="orders", viewer=None)) == [1]
    assert found(await search_tasks(session=session, query="orders", viewer="U2")) == [2, 1]


async def test_search_tasks_sums_up_each_tasks_latest_report(session: AsyncSession) -> None:
    reported = await ask(session, thread="1.1", text="Design the orders API")
    follow_up = await ask(session, thread="1.1", ts="1.2", text="and add cursor paging")
    await ask(session, thread="2.2", text="Design the orders API again")
    assert reported.task.id is not None
    await file_report(session, reported, status="IN_PROGRESS")
    await save_report(
        session=session,
        task_id=reported.task.id,
        turn_id=follow_up.turn.id or 0,
        status="COMPLETED",
        data=report_data(
            status="COMPLETED",
            key_deliverables=[
                {"kind": "api_integration", "description": "GET /orders with cursor paging"},
                {"kind": "data_storage", "description": "an index on orders.created_at"},
            ],
        ),
        red_flag_count=0,
        min_score=7,
        now=T0 + minutes(5),
    )
    await session.commit()
    await move_task(session, reported.task.id, TaskStatus.WORKING)
    await move_task(session, reported.task.id, TaskStatus.COMPLETED)

    rows = await search_tasks(session=session, query="orders API")

    assert [(row.task.id, row.task.status, row.summary) for row in rows] == [
        (2, TaskStatus.QUEUED, None),
        (
            1,
            TaskStatus.COMPLETED,
            "COMPLETED: Design the orders API; delivers GET /orders with cursor paging",
        ),
    ]


def test_a_report_summary_names_the_blocker_and_stays_short() -> None:
    blocked = report_data(
        status="BLOCKED",
        task="Move billing to the new queue\n  and retire the old one",
        key_deliverables=[{"kind": "system", "description": "x" * 300}],
        dependencies_handoffs=[
            {"kind": "infrastructure_blocker", "description": "a queue from the platform team"}
        ],
    )
    short = report_data(
        status="BLOCKED",
        dependencies_handoffs=[
            {"kind": "infrastructure_blocker", "description": "a queue from the platform team"}
        ],
    )

    long_summary = report_summary(blocked)
    assert long_summary is not None and len(long_summary) == 200
    assert long_summary.startswith("BLOCKED: Move billing to the new queue and retire the old one")
    assert long_summary.endswith("x…")
    assert report_summary(short) == (
        "BLOCKED: Design the orders API; blocked on a queue from the platform team"
    )
    assert report_summary({"status": "COMPLETED"}) is None


@pytest.mark.parametrize(
    "query",
    [
        '"orders',
        'orders"',
        "orders*",
        "title:orders",
        "orders & api",
        "orders | !api",
        "orders OR api",
        "orders AND NOT api",
        "(orders) (api",
        "NEAR(orders api)",
        "^orders",
        "a:* | orders",
        "orders'; DROP TABLE task; --",
        "orders\\ api%_",
        "orders-api",
        "orders.api",
    ],
)
async def test_search_tasks_reads_search_syntax_as_words(session: AsyncSession, query: str) -> None:
    await ask(session, thread="1.1", text="Orders API")
    await ask(session, thread="2.2", text="Fix the login page")

    assert found(await search_tasks(session=session, query=query)) == [1]


async def test_search_tasks_treats_wildcards_as_text(session: AsyncSession) -> None:
    await ask(session, thread="1.1", text="rename user_id to account_id")
    await ask(session, thread="2.2", text="the userXid column")

    rows = await search_tasks(session=session, query="user_id")

    assert found(rows) == [1]


async def test_search_tasks_ignores_queries_without_words(session: AsyncSession) -> None:
    await ask(session, thread="1.1", text="an ok to do, and how: what for the team")

    assert await search_tasks(session=session, query="ok ?? !") == []
    assert await search_tasks(session=session, query="and how: what for the") == []
    assert search_terms("How do the Orders and orders.v2 APIs work with our user_id?") == [
        "orders",
        "orders.v2",
        "apis",
        "work",
        "user_id",
    ]


async def test_search_tasks_finds_words_by_their_stem(session: AsyncSession) -> None:
    await ask(session, thread="1.1", text="Add an index on orders.created_at")
    await ask(session, thread="2.2", text="Paginated invoice listing")

    assert found(await search_tasks(session=session, query="indexes")) == [1]
    assert found(await search_tasks(session=session, query="invoices")) == [2]


async def test_search_tasks_finds_the_words_inside_code_names(session: AsyncSession) -> None:
    await ask(session, thread="1.1", text="Add an index on orders.created_at")
    await ask(session, thread="2.2", text="Cache GET /invoices/{id} in the billing-api")

    for query, expected in [
        ("orders", [1]),
        ("created_at", [1]),
        ("orders.created_at", [1]),
        ("invoices", [2]),
        ("billing", [2]),
        ("billing-api", [2]),
    ]:
        assert found(await search_tasks(session=session, query=query)) == expected, query


async def test_postgres_search_uses_the_full_text_index(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("an index on to_tsvector is PostgreSQL's")
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    async with sessions() as session:
        await ask(session, text="Orders API")
        await search_tasks(session=session, query="orders api")
    event.remove(engine.sync_engine, "before_cursor_execute", keep)
    statement, parameters = next(s for s in statements if "phraseto_tsquery" in s[0])

    async with engine.connect() as connection:
        # Too few rows for the planner to choose an index on its own.
        await connection.exec_driver_sql("SET enable_seqscan = off")
        plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)

    assert "ix_task_search" in "\n".join(row[0] for row in plan)


async def test_search_tasks_follows_a_tasks_text_as_it_changes(session: AsyncSession) -> None:
    finished = await make_task(session, "1.1", TaskStatus.COMPLETED)
    await ask(session, thread="2.2", text="Retention policy for the audit log")
    assert finished.task.id is not None

    await purge_task_text(session=session, older_than=timedelta(days=1), now=T0 + timedelta(days=2))
    await session.commit()

    assert found(await search_tasks(session=session, query="orders")) == []
    assert found(await search_tasks(session=session, query="removed")) == [finished.task.id]


async def test_search_tasks_forgets_a_deleted_task(session: AsyncSession) -> None:
    await ask(session, thread="1.1", text="Orders API")
    gone = await ask(session, thread="2.2", text="Orders export")
    await session.delete(gone.task)
    await session.commit()
    # SQLite gives the next row the deleted row's id: the index must not still hold its words.
    login = await ask(session, thread="3.3", text="Fix the login page")

    assert found(await search_tasks(session=session, query="export")) == []
    assert found(await search_tasks(session=session, query="orders login")) == [login.task.id, 1]


async def test_sqlite_without_fts5_searches_by_substring(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as connection:
            # What migration 0008 leaves on a SQLite built without FTS5: no table, no triggers.
            for trigger in ("task_fts_insert", "task_fts_update", "task_fts_delete"):
                await connection.exec_driver_sql(f"DROP TRIGGER {trigger}")
            await connection.exec_driver_sql("DROP TABLE task_fts")
        async with session_factory(engine)() as session:
            await ask(session, thread="1.1", text="Orders API with cursor pagination")
            await ask(session, thread="2.2", text="Export orders through the API")
            await ask(session, thread="3.3", text="Add an index on orders.created_at")
            await ask(session, thread="4.4", text="the userXid column")
            await ask(session, thread="5.5", text="rename user_id: 100% (sure)")

            ranked = await search_tasks(session=session, query="cursor orders API", limit=10)
            unstemmed = await search_tasks(session=session, query="indexes")
            literal = await search_tasks(session=session, query="user_id")
            quoted = await search_tasks(session=session, query='"100%" OR (sure*')
    finally:
        await engine.dispose()

    assert [(row.task.id, row.matched_terms) for row in ranked] == [(1, 3), (2, 2), (3, 1)]
    assert found(unstemmed) == []
    assert found(literal) == found(quoted) == [5]
