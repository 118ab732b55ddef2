"""Writes that go with a turn: reports, research, the usage ledger, post keys, dedupe keys."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    DedupeKey,
    HomeVisit,
    LLMCall,
    Report,
    ResearchRequest,
    SlackPost,
    Task,
    Turn,
    TurnStatus,
)
from storage.queue import LeaseLost, claim_next_turn
from storage.records import (
    claim_dedupe_key,
    drop_dedupe_keys,
    find_post,
    recent_home_visitors,
    record_home_visit,
    record_llm_call,
    record_post,
    save_answer,
    save_report,
    save_research,
)
from tests.storage.support import T0, ask, count, minutes, report_data


async def test_save_report_stores_the_report_as_json(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session)
    assert intake.task.id is not None and intake.turn.id is not None
    data = report_data(
        status="IN_PROGRESS",
        handoffs=["Ops: a read replica"],
        pm_scores={"System Architecture & Design": 8, "Risk Assessment": 5},
        estimated_time="2 days",
    )

    saved = await save_report(
        session=session,
        task_id=intake.task.id,
        turn_id=intake.turn.id,
        status="IN_PROGRESS",
        data=data,
        red_flag_count=1,
        min_score=5,
        gaps=["red flag for Risk Assessment missing"],
        now=T0,
    )
    await session.commit()

    async with sessions() as fresh:
        stored = await fresh.get(Report, saved.id)
    assert stored is not None
    assert stored.data == data
    assert stored.gaps == ["red flag for Risk Assessment missing"]
    assert (stored.status, stored.red_flag_count, stored.min_score) == ("IN_PROGRESS", 1, 5)
    assert (stored.task_id, stored.turn_id, stored.created_at) == (1, intake.turn.id, T0)


async def test_save_report_is_idempotent_per_turn(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session)
    assert intake.task.id is not None and intake.turn.id is not None
    first = await save_report(
        session=session,
        task_id=intake.task.id,
        turn_id=intake.turn.id,
        status="COMPLETED",
        data=report_data(status="COMPLETED"),
        red_flag_count=0,
        min_score=7,
    )

    retried = await save_report(
        session=session,
        task_id=intake.task.id,
        turn_id=intake.turn.id,
        status="BLOCKED",
        data=report_data(status="BLOCKED"),
        red_flag_count=2,
        min_score=3,
    )
    await session.commit()

    assert retried.id == first.id
    assert (retried.status, retried.data["status"]) == ("COMPLETED", "COMPLETED")
    assert await count(sessions, Report) == 1


async def test_save_report_without_gaps_stores_an_empty_list(session: AsyncSession) -> None:
    intake = await ask(session)
    assert intake.task.id is not None and intake.turn.id is not None

    saved = await save_report(
        session=session,
        task_id=intake.task.id,
        turn_id=intake.turn.id,
        status="COMPLETED",
        data=report_data(),
        red_flag_count=0,
        min_score=7,
    )

    assert saved.gaps == []


async def test_save_research_round_trips_sources(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session)
    sources: list[dict[str, Any]] = [
        {
            "url": "https://www.postgresql.org/docs/current/sql-select.html",
            "title": "SELECT — FOR UPDATE … SKIP LOCKED",
            "cited_text": 'Rows that "cannot be immediately locked" are skipped.',
            "page_age": None,
            "rank": 1,
        },
        {"url": "https://sqlite.org/wal.html", "title": "Write-Ahead Logging", "rank": 2.5},
    ]
    request = {"objective": "queue claims", "questions": ["skip locked?"], "depth": {"max": 3}}

    saved = await save_research(
        session=session,
        task_id=intake.task.id,
        turn_id=intake.turn.id,
        objective="How do replicas claim jobs without waiting?",
        request=request,
        findings="Use FOR UPDATE SKIP LOCKED on PostgreSQL.",
        sources=sources,
        live_sources=False,
        web_searches=4,
        now=T0,
    )
    await session.commit()

    async with sessions() as fresh:
        stored = await fresh.get(ResearchRequest, saved.id)
    assert stored is not None
    assert stored.sources == sources
    assert stored.request == request
    assert stored.findings == "Use FOR UPDATE SKIP LOCKED on PostgreSQL."
    assert (stored.live_sources, stored.web_searches, stored.created_at) == (False, 4, T0)
    assert (stored.task_id, stored.turn_id) == (intake.task.id, intake.turn.id)


async def test_save_research_outside_a_task(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    saved = await save_research(
        session=session,
        task_id=None,
        turn_id=None,
        objective="ad hoc",
        request={},
        findings="nothing found",
        sources=[],
        live_sources=True,
        web_searches=0,
    )
    await session.commit()

    async with sessions() as fresh:
        stored = await fresh.get(ResearchRequest, saved.id)
    assert stored is not None
    assert (stored.task_id, stored.sources) == (None, [])


async def test_record_llm_call_adds_a_ledger_row(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session)
    call = LLMCall(
        task_id=intake.task.id,
        turn_id=intake.turn.id,
        agent="engineer",
        model="claude-sonnet-5-5",
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=9000,
        cache_write_tokens=150,
        web_searches=1,
        cost_usd=0.0421,
        latency_ms=5400,
        stop_reason="end_turn",
        request_id="req_011CT",
        created_at=T0,
    )

    saved = await record_llm_call(session=session, call=call)
    await session.commit()

    assert saved.id is not None
    async with sessions() as fresh:
        stored = await fresh.get(LLMCall, saved.id)
    assert stored is not None
    assert stored.model_dump() == call.model_dump()


async def test_deleting_a_task_keeps_its_ledger_rows(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session)
    saved = await record_llm_call(
        session=session,
        call=LLMCall(task_id=intake.task.id, turn_id=intake.turn.id, agent="pm", model="m"),
    )

    await session.exec(delete(Task).where(col(Task.id) == intake.task.id))
    await session.commit()

    async with sessions() as fresh:
        stored = await fresh.get(LLMCall, saved.id)
    assert stored is not None
    assert (stored.task_id, stored.turn_id) == (None, None)


async def test_record_post_keeps_the_first_post_for_a_key(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session)
    key = f"{intake.turn.id}:answer"

    first = await record_post(
        session=session,
        key=key,
        kind="answer",
        channel_id="C1",
        ts="1700000001.000100",
        turn_id=intake.turn.id,
    )
    retried = await record_post(
        session=session,
        key=key,
        kind="answer",
        channel_id="C1",
        ts="1700000099.000900",
        turn_id=intake.turn.id,
    )
    await session.commit()

    assert retried.id == first.id
    assert retried.ts == "1700000001.000100"
    assert await count(sessions, SlackPost) == 1
    found = await find_post(session=session, key=key)
    assert found is not None and found.ts == "1700000001.000100"


async def test_find_post_for_unknown_key_is_none(session: AsyncSession) -> None:
    assert await find_post(session=session, key="999:report") is None


async def test_dedupe_key_is_claimed_once(session: AsyncSession) -> None:
    first = await claim_dedupe_key(session=session, key="Ev0123")
    repeat = await claim_dedupe_key(session=session, key="Ev0123")
    other = await claim_dedupe_key(session=session, key="Ev0456")

    assert (first, repeat, other) == (True, False, True)


async def test_dedupe_key_claim_is_seen_by_another_replica(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as replica_a:
        assert await claim_dedupe_key(session=replica_a, key="Ev0123")
    async with sessions.begin() as replica_b:
        assert not await claim_dedupe_key(session=replica_b, key="Ev0123")


async def test_drop_dedupe_keys_removes_only_old_keys(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await claim_dedupe_key(session=session, key="old", now=T0 - minutes(120))
    await claim_dedupe_key(session=session, key="recent", now=T0 - minutes(30))

    dropped = await drop_dedupe_keys(session=session, older_than=timedelta(hours=1), now=T0)
    await session.commit()

    assert dropped == 1
    async with sessions() as fresh:
        remaining = (await fresh.exec(select(DedupeKey.key))).all()
    assert list(remaining) == ["recent"]
    assert await claim_dedupe_key(session=session, key="old", now=T0)
    assert not await claim_dedupe_key(session=session, key="recent", now=T0)


async def test_home_visitors_are_those_who_opened_the_home_recently(
    session: AsyncSession,
) -> None:
    await record_home_visit(session=session, user_id="U1", team_id="T1", now=T0 - minutes(10))
    await record_home_visit(session=session, user_id="U2", team_id="T1", now=T0 - minutes(120))

    visitors = await recent_home_visitors(session=session, within=timedelta(hours=1), now=T0)

    assert [(v.user_id, v.team_id, v.opened_at) for v in visitors] == [
        ("U1", "T1", T0 - minutes(10))
    ]


async def test_a_new_home_visit_updates_the_same_row(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await record_home_visit(session=session, user_id="U2", team_id="T1", now=T0 - minutes(120))

    await record_home_visit(session=session, user_id="U2", team_id="T1", now=T0)
    await session.commit()

    assert await count(sessions, HomeVisit) == 1
    async with sessions() as fresh:
        visitors = await recent_home_visitors(session=fresh, within=timedelta(hours=1), now=T0)
    assert [(v.user_id, v.opened_at) for v in visitors] == [("U2", T0)]


async def test_save_answer_keeps_the_posted_answer_on_the_turn(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = await ask(session)
    assert intake.turn.id is not None
    await claim_next_turn(session=session, owner="w1", lease_seconds=60, now=T0)

    await save_answer(
        session=session, turn_id=intake.turn.id, owner="w1", answer_text="Use keyset paging."
    )
    await session.commit()

    async with sessions() as fresh:
        stored = await fresh.get(Turn, intake.turn.id)
    assert stored is not None
    assert (stored.answer_text, stored.status) == ("Use keyset paging.", TurnStatus.RUNNING)


@pytest.mark.parametrize("held_by", ["another worker", "nobody"])
async def test_save_answer_refuses_a_turn_this_worker_does_not_hold(
    sessions: async_sessionmaker[AsyncSession], held_by: str
) -> None:
    async with sessions() as session:
        intake = await ask(session)
    turn_id = intake.turn.id
    assert turn_id is not None
    if held_by == "another worker":
        async with sessions.begin() as session:
            await claim_next_turn(session=session, owner="w2", lease_seconds=60, now=T0)

    with pytest.raises(LeaseLost, match=f"turn {turn_id} is not held by w1"):
        async with sessions.begin() as session:
            await save_answer(session=session, turn_id=turn_id, owner="w1", answer_text="late")

    async with sessions() as fresh:
        stored = await fresh.get(Turn, turn_id)
    assert stored is not None and stored.answer_text is None


async def test_save_report_refuses_a_stale_holder_and_keeps_the_holders_report(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """w1's lease ran out and w2 claimed the turn: w1's late report is refused, and w2's is the
    one kept."""
    async with sessions() as session:
        intake = await ask(session)
    turn_id, task_id = intake.turn.id, intake.task.id
    assert turn_id is not None and task_id is not None
    async with sessions.begin() as session:
        await claim_next_turn(session=session, owner="w2", lease_seconds=60, now=T0)

    def report(session: AsyncSession, owner: str, status: str) -> Any:
        return save_report(
            session=session,
            task_id=task_id,
            turn_id=turn_id,
            status=status,
            data={"by": owner},
            red_flag_count=0,
            min_score=7,
            owner=owner,
        )

    with pytest.raises(LeaseLost, match=f"turn {turn_id} is not held by w1"):
        async with sessions.begin() as session:
            await report(session, "w1", "BLOCKED")
    async with sessions.begin() as session:
        kept = await report(session, "w2", "COMPLETED")
    assert (kept.status, kept.data) == ("COMPLETED", {"by": "w2"})
    assert await count(sessions, Report) == 1


# Row-level races: SQLite takes the write lock at BEGIN, so its writers never interleave.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_concurrent_home_visits_of_one_person_keep_one_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def visit(n: int) -> None:
        async with sessions.begin() as session:
            await record_home_visit(
                session=session, user_id="U1", team_id="T1", now=T0 + minutes(n)
            )

    await asyncio.gather(*(visit(n) for n in range(8)))

    assert await count(sessions, HomeVisit) == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_concurrent_saves_of_a_turns_report_keep_the_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        intake = await ask(session)
    assert intake.task.id is not None and intake.turn.id is not None
    task_id, turn_id = intake.task.id, intake.turn.id

    async def save(n: int) -> Report:
        async with sessions.begin() as session:
            return await save_report(
                session=session,
                task_id=task_id,
                turn_id=turn_id,
                status="COMPLETED",
                data=report_data(attempt=n),
                red_flag_count=0,
                min_score=7,
            )

    saved = await asyncio.gather(*(save(n) for n in range(8)))

    assert await count(sessions, Report) == 1
    assert len({report.id for report in saved}) == 1
    assert len({report.data["attempt"] for report in saved}) == 1
