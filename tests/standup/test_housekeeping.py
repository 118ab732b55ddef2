"""Housekeeping: one nudge per overdue estimate, retention of message text, old dedupe keys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, func, select, update

from bot.services.deps import Deps
from bot.services.housekeeping import Housekeeping
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.housekeeping import PURGED_TEXT
from storage.models import (
    DedupeKey,
    LLMCall,
    Report,
    ResearchRequest,
    Task,
    TaskCountDelta,
    TaskEvent,
    TaskStatus,
    ToolCall,
    Turn,
)
from storage.queries import count_by_status
from storage.records import claim_dedupe_key, save_research
from storage.tasks import apply_transition
from storage.tool_calls import start_tool_call
from tests.conftest import _truncate_postgres
from tests.e2e.conftest import ALICE, ENGINEERING
from tests.standup.conftest import Clock, open_runtime
from tests.standup.support import add_task

T0 = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


RuntimeFor = Callable[..., contextlib.AbstractAsyncContextManager[Deps]]


@pytest.fixture
def runtime_for(sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel) -> RuntimeFor:
    """`async with runtime_for(**settings) as deps`, on SQLite unless `database_url=`."""

    @contextlib.asynccontextmanager
    async def _open(**overrides: object) -> AsyncIterator[Deps]:
        url = str(overrides.pop("database_url", sqlite_url))
        async with open_runtime(
            database_url=url, fake_slack=fake_slack, fake_model=fake_model, **overrides
        ) as deps:
            yield deps

    return _open


async def _task(deps: Deps, task_id: int) -> Task:
    async with deps.sessions() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


def _replies(fake_slack: FakeSlack, task: Task) -> list[str]:
    bot = fake_slack.workspace.bot_user.id
    return [
        m.text
        for m in fake_slack.workspace.thread(task.channel_id, task.thread_ts)
        if m.user == bot
    ]


async def test_an_overdue_task_gets_one_nudge_in_its_thread_to_the_requester(
    runtime_for: RuntimeFor,
    fake_slack: FakeSlack,
) -> None:
    clock = Clock(T0)
    async with runtime_for(PMTEAM_TIMEZONE="Europe/Berlin") as deps:
        overdue = await add_task(
            deps.sessions,
            title="Billing events",
            status=TaskStatus.IN_PROGRESS,
            at=T0,
            estimate=timedelta(hours=2),
            fake_slack=fake_slack,
        )
        on_time = await add_task(
            deps.sessions,
            title="Search index",
            status=TaskStatus.IN_PROGRESS,
            at=T0,
            estimate=timedelta(hours=8),
            fake_slack=fake_slack,
        )
        housekeeping = Housekeeping(deps=deps, clock=clock)
        assert await housekeeping.nudge_overdue_tasks() == []
        clock.advance(timedelta(hours=3))
        first = await housekeeping.nudge_overdue_tasks()
        clock.advance(timedelta(minutes=5))
        second = await housekeeping.nudge_overdue_tasks()
        nudged = await _task(deps, overdue.id or 0)
        async with deps.sessions() as session:
            events = (
                await session.exec(select(TaskEvent).where(col(TaskEvent.kind) == "nudged"))
            ).all()

    assert first == [overdue.id] and second == []
    (nudge,) = _replies(fake_slack, overdue)
    assert nudge.startswith(f"<@{ALICE}> :alarm_clock: T-1 (Billing events) was estimated")
    assert "2 hours" in nudge and "ran out 1 h ago" in nudge and "Mon 30 Mar 12:00 CEST" in nudge
    assert _replies(fake_slack, on_time) == []
    assert nudged.nudged_at == T0 + timedelta(hours=3)
    assert [e.task_id for e in events] == [overdue.id]


async def test_a_nudge_slack_refused_is_sent_on_the_next_run(
    runtime_for: RuntimeFor,
    fake_slack: FakeSlack,
) -> None:
    clock = Clock(T0 + timedelta(hours=3))
    async with runtime_for() as deps:
        task = await add_task(
            deps.sessions,
            title="Billing events",
            status=TaskStatus.IN_PROGRESS,
            at=T0,
            estimate=timedelta(hours=2),
            fake_slack=fake_slack,
        )
        housekeeping = Housekeeping(deps=deps, clock=clock)
        fake_slack.inject("chat.postMessage", error="fatal_error")
        assert await housekeeping.nudge_overdue_tasks() == []
        assert (await _task(deps, task.id or 0)).nudged_at is None
        assert await housekeeping.nudge_overdue_tasks() == [task.id]
    assert len(_replies(fake_slack, task)) == 1


async def test_a_new_estimate_can_be_nudged_again_once(
    runtime_for: RuntimeFor,
    fake_slack: FakeSlack,
) -> None:
    clock = Clock(T0 + timedelta(hours=3))
    async with runtime_for() as deps:
        task = await add_task(
            deps.sessions,
            title="Billing events",
            status=TaskStatus.IN_PROGRESS,
            at=T0,
            estimate=timedelta(hours=2),
            fake_slack=fake_slack,
        )
        housekeeping = Housekeeping(deps=deps, clock=clock)
        assert await housekeeping.nudge_overdue_tasks() == [task.id]
        async with deps.sessions.begin() as session:  # someone marks it blocked: no more nudges
            blocked = await session.get(Task, task.id)
            assert blocked is not None
            apply_transition(
                session=session, task=blocked, to_status=TaskStatus.BLOCKED, actor=ALICE
            )
        clock.advance(timedelta(days=1))
        assert await housekeeping.nudge_overdue_tasks() == []
    assert len(_replies(fake_slack, task)) == 1


async def test_retention_removes_old_message_text_and_keeps_the_counts(
    runtime_for: RuntimeFor,
    fake_slack: FakeSlack,
) -> None:
    clock = Clock(T0 + timedelta(days=31))
    async with runtime_for(PMTEAM_RETENTION_DAYS=30) as deps:
        sessions = deps.sessions
        old = await add_task(sessions, title="Old secret plan", status=TaskStatus.COMPLETED, at=T0)
        still_open = await add_task(
            sessions, title="Old open work", status=TaskStatus.BLOCKED, at=T0, note="waiting"
        )
        recent = await add_task(
            sessions,
            title="Recent plan",
            status=TaskStatus.COMPLETED,
            at=T0 + timedelta(days=20),
        )
        async with sessions.begin() as session:
            await save_research(
                session=session,
                task_id=old.id,
                turn_id=None,
                objective="find the secret",
                request={"objective": "find the secret"},
                findings="the secret findings",
                sources=[],
                live_sources=True,
                web_searches=1,
            )
            session.add(LLMCall(task_id=old.id, agent="engineer", model="m", cost_usd=0.5))
            # What the engineer was sent for the old task, findings included (for follow-ups).
            await session.exec(
                update(Turn)
                .where(col(Turn.task_id) == old.id)
                .values(exchange=[{"role": "user", "content": "the secret request"}])
            )
            # A team tool it called, with what it asked the tool.
            [old_turn] = (
                await session.exec(select(Turn.id).where(col(Turn.task_id) == old.id))
            ).all()
            call = await start_tool_call(
                session=session,
                task_id=old.id,
                turn_id=old_turn,
                server="github",
                tool="search_code",
                arguments={"query": "the secret"},
                writes=False,
            )
            call.outcome = "ok"
        housekeeping = Housekeeping(deps=deps, clock=clock)
        assert await housekeeping.purge_old_text() == 1
        assert await housekeeping.purge_old_text() == 0
        async with sessions() as session:
            tasks = {t.id: t for t in (await session.exec(select(Task))).all()}
            turns: dict[int | None, Turn] = {
                t.task_id: t for t in (await session.exec(select(Turn))).all()
            }
            research = (await session.exec(select(ResearchRequest))).one()
            tool_call = (await session.exec(select(ToolCall))).one()
            reports = (await session.exec(select(func.count()).select_from(Report))).one()
            cost = (await session.exec(select(func.sum(LLMCall.cost_usd)))).one()

    purged = tasks[old.id]
    assert (purged.title, purged.request_text, purged.status) == (
        PURGED_TEXT,
        PURGED_TEXT,
        TaskStatus.COMPLETED,
    )
    assert turns[old.id].text == PURGED_TEXT and turns[old.id].answer_text is None
    assert turns[old.id].exchange is None
    assert "secret" not in research.findings + research.objective + str(research.request)
    assert tool_call.arguments == {} and tool_call.outcome == "ok"
    assert tasks[still_open.id].request_text == "Old open work"
    assert tasks[recent.id].request_text == "Recent plan"
    assert turns[recent.id].answer_text == "the answer to Recent plan"
    assert reports == 3 and cost == 0.5


async def test_retention_is_off_by_default_and_old_dedupe_keys_are_dropped(
    runtime_for: RuntimeFor,
) -> None:
    clock = Clock(T0 + timedelta(days=400))
    async with runtime_for() as deps:
        await add_task(deps.sessions, title="Kept", status=TaskStatus.COMPLETED, at=T0)
        async with deps.sessions.begin() as session:
            await claim_dedupe_key(
                session=session, key="Ev-old", now=clock.now - timedelta(hours=25)
            )
            await claim_dedupe_key(
                session=session, key="Ev-new", now=clock.now - timedelta(hours=1)
            )
        housekeeping = Housekeeping(deps=deps, clock=clock)
        assert await housekeeping.purge_old_text() == 0
        assert await housekeeping.drop_old_dedupe_keys() == 1
        async with deps.sessions() as session:
            keys = [k.key for k in (await session.exec(select(DedupeKey))).all()]
            title = (await session.exec(select(Task.title))).one()
    assert keys == ["Ev-new"] and title == "Kept"


async def test_nudges_on_postgres_too(
    runtime_for: RuntimeFor,
    fake_slack: FakeSlack,
    postgres_database: str,
) -> None:
    _truncate_postgres(postgres_database)
    clock = Clock(T0 + timedelta(hours=3))
    async with runtime_for(database_url=postgres_database) as deps:
        task = await add_task(
            deps.sessions,
            title="Billing events",
            status=TaskStatus.IN_PROGRESS,
            at=T0,
            estimate=timedelta(hours=2),
            fake_slack=fake_slack,
            channel=ENGINEERING,
        )
        housekeeping = Housekeeping(deps=deps, clock=clock)
        results = await asyncio.gather(*(housekeeping.nudge_overdue_tasks() for _ in range(4)))
    assert sorted(sum(results, [])) == [task.id]
    assert len(_replies(fake_slack, task)) == 1


async def test_task_counts_are_folded_and_stay_the_same(runtime_for: RuntimeFor) -> None:
    async with runtime_for() as deps:
        for n in range(3):
            await add_task(deps.sessions, title=f"Task {n}", status=TaskStatus.COMPLETED, at=T0)
        async with deps.sessions() as session:
            before = await count_by_status(session=session)
            rows = (await session.exec(select(func.count()).select_from(TaskCountDelta))).one()
        housekeeping = Housekeeping(deps=deps)
        assert await housekeeping.compact_task_counts() == rows
        async with deps.sessions() as session:
            after = await count_by_status(session=session)
            left = (await session.exec(select(func.count()).select_from(TaskCountDelta))).one()
    assert before == after and after[TaskStatus.COMPLETED] == 3
    assert left == 1  # queued and working net to zero and are dropped
