"""Writes that go with a turn: reports, research, the usage ledger, Slack post keys, dedupe keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    DedupeKey,
    HomeVisit,
    LLMCall,
    Report,
    ResearchRequest,
    SlackPost,
    Turn,
)
from storage.types import utcnow


async def save_report(
    *,
    session: AsyncSession,
    task_id: int,
    turn_id: int,
    status: str,
    data: dict[str, Any],
    red_flag_count: int,
    min_score: int,
    gaps: list[str] | None = None,
    now: datetime | None = None,
) -> Report:
    """Store a turn's report once; a retried turn gets the stored one back."""
    existing = (await session.exec(select(Report).where(col(Report.turn_id) == turn_id))).first()
    if existing is not None:
        # End the read transaction like the insert path does: left open on SQLite it would
        # hold the write lock (BEGIN IMMEDIATE) for as long as the caller keeps the session.
        await session.commit()
        return existing
    report = Report(
        task_id=task_id,
        turn_id=turn_id,
        status=status,
        data=data,
        red_flag_count=red_flag_count,
        min_score=min_score,
        gaps=gaps or [],
        created_at=now or utcnow(),
    )
    session.add(report)
    await session.commit()
    return report


async def save_research(
    *,
    session: AsyncSession,
    task_id: int | None,
    turn_id: int | None,
    objective: str,
    request: dict[str, Any],
    findings: str,
    sources: list[dict[str, Any]],
    live_sources: bool,
    web_searches: int,
    now: datetime | None = None,
) -> ResearchRequest:
    row = ResearchRequest(
        task_id=task_id,
        turn_id=turn_id,
        objective=objective,
        request=request,
        findings=findings,
        sources=sources,
        live_sources=live_sources,
        web_searches=web_searches,
        created_at=now or utcnow(),
    )
    session.add(row)
    await session.commit()
    return row


async def record_llm_call(*, session: AsyncSession, call: LLMCall) -> LLMCall:
    session.add(call)
    await session.commit()
    return call


async def find_post(*, session: AsyncSession, key: str) -> SlackPost | None:
    return (await session.exec(select(SlackPost).where(col(SlackPost.key) == key))).first()


async def record_post(
    *,
    session: AsyncSession,
    key: str,
    kind: str,
    channel_id: str,
    ts: str | None,
    turn_id: int | None = None,
) -> SlackPost:
    """Remember a Slack post by its idempotency key (turn id + kind); keeps the first one."""
    post = SlackPost(key=key, kind=kind, channel_id=channel_id, ts=ts, turn_id=turn_id)
    session.add(post)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        existing = await find_post(session=session, key=key)
        await session.commit()  # as in save_report: never return inside a transaction
        assert existing is not None
        return existing
    return post


async def claim_dedupe_key(*, session: AsyncSession, key: str, now: datetime | None = None) -> bool:
    """True the first time a key is seen (e.g. a Slack event id), False on every repeat."""
    session.add(DedupeKey(key=key, created_at=now or utcnow()))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def drop_dedupe_keys(
    *, session: AsyncSession, older_than: timedelta, now: datetime | None = None
) -> int:
    cutoff = (now or utcnow()) - older_than
    result = await session.exec(delete(DedupeKey).where(col(DedupeKey.created_at) < cutoff))
    await session.commit()
    return int(result.rowcount)


async def record_home_visit(
    *, session: AsyncSession, user_id: str, team_id: str, now: datetime | None = None
) -> None:
    visit = await session.get(HomeVisit, user_id)
    if visit is None:
        visit = HomeVisit(user_id=user_id, team_id=team_id)
    visit.opened_at = now or utcnow()
    session.add(visit)
    await session.commit()


async def recent_home_visitors(
    *, session: AsyncSession, within: timedelta, now: datetime | None = None
) -> list[HomeVisit]:
    cutoff = (now or utcnow()) - within
    result = await session.exec(select(HomeVisit).where(col(HomeVisit.opened_at) >= cutoff))
    return list(result.all())


async def save_answer(*, session: AsyncSession, turn_id: int, answer_text: str) -> None:
    """Keep the answer as soon as it is posted, so a retried turn can report without redoing it."""
    turn = await session.get(Turn, turn_id)
    if turn is not None:
        turn.answer_text = answer_text
        session.add(turn)
        await session.commit()
