"""Writes that go with a turn: reports, research, the usage ledger, Slack post keys, dedupe keys."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert
from storage.models import (
    DedupeKey,
    Feedback,
    HomeVisit,
    Installation,
    LLMCall,
    Rating,
    Report,
    ReportKind,
    ResearchRequest,
    SlackPost,
    Turn,
    TurnStatus,
)
from storage.queue import LeaseLost
from storage.types import utcnow


async def save_report(
    *,
    session: AsyncSession,
    task_id: int,
    turn_id: int,
    status: str,
    data: dict[str, Any],
    kind: str = ReportKind.BACKEND_WORK,
    red_flag_count: int,
    min_score: int,
    gaps: list[str] | None = None,
    owner: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Store a turn's report once; a retried turn gets the stored one back. Concurrent saves
    of one turn's report store the first and all return it.

    With `owner` (the worker's claim token), only while it holds the turn: the turn row is
    locked and checked in the same transaction, and LeaseLost raised once another worker has
    it, so a stale holder's report can't become the one that is kept."""
    if owner is not None:
        held = await session.exec(
            select(Turn.id)
            .where(
                col(Turn.id) == turn_id,
                col(Turn.lease_owner) == owner,
                col(Turn.status) == TurnStatus.RUNNING,
            )
            .with_for_update()
        )
        if held.first() is None:
            raise LeaseLost(f"turn {turn_id} is not held by {owner}")
    report = Report(
        task_id=task_id,
        turn_id=turn_id,
        status=status,
        kind=kind,
        data=data,
        red_flag_count=red_flag_count,
        min_score=min_score,
        gaps=gaps or [],
        created_at=now or utcnow(),
    )
    await session.exec(
        insert(session, Report)
        .values(report.model_dump(exclude={"id"}))
        .on_conflict_do_nothing(index_elements=[col(Report.turn_id)])
    )
    stored = await session.exec(
        select(Report)
        .where(col(Report.turn_id) == turn_id)
        .execution_options(populate_existing=True)
    )
    return stored.one()


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
    await session.flush()
    return row


async def record_llm_call(*, session: AsyncSession, call: LLMCall) -> LLMCall:
    session.add(call)
    await session.flush()
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
    await session.exec(
        insert(session, SlackPost)
        .values(
            SlackPost(key=key, kind=kind, channel_id=channel_id, ts=ts, turn_id=turn_id).model_dump(
                exclude={"id"}
            )
        )
        .on_conflict_do_nothing(index_elements=[col(SlackPost.key)])
    )
    stored = await session.exec(
        select(SlackPost).where(col(SlackPost.key) == key).execution_options(populate_existing=True)
    )
    return stored.one()


async def claim_dedupe_key(*, session: AsyncSession, key: str, now: datetime | None = None) -> bool:
    """True the first time a key is seen (e.g. a Slack event id), False on every repeat."""
    claimed = await session.exec(
        insert(session, DedupeKey)
        .values(key=key, created_at=now or utcnow())
        .on_conflict_do_nothing(index_elements=[col(DedupeKey.key)])
        .returning(col(DedupeKey.key))  # psycopg's rowcount is -1 here
    )
    return claimed.first() is not None


async def drop_dedupe_keys(
    *, session: AsyncSession, older_than: timedelta, now: datetime | None = None
) -> int:
    cutoff = (now or utcnow()) - older_than
    result = await session.exec(delete(DedupeKey).where(col(DedupeKey.created_at) < cutoff))
    return int(result.rowcount)


async def record_home_visit(
    *, session: AsyncSession, user_id: str, team_id: str, now: datetime | None = None
) -> None:
    """Remember when this person last opened the App Home (one row each, however many
    visits arrive at once)."""
    upsert = insert(session, HomeVisit).values(
        user_id=user_id, team_id=team_id, opened_at=now or utcnow()
    )
    await session.exec(
        upsert.on_conflict_do_update(
            index_elements=[col(HomeVisit.user_id)],
            set_={"team_id": upsert.excluded.team_id, "opened_at": upsert.excluded.opened_at},
        )
    )


async def recent_home_visitors(
    *, session: AsyncSession, within: timedelta, now: datetime | None = None
) -> list[HomeVisit]:
    cutoff = (now or utcnow()) - within
    result = await session.exec(select(HomeVisit).where(col(HomeVisit.opened_at) >= cutoff))
    return list(result.all())


async def save_answer(
    *,
    session: AsyncSession,
    turn_id: int,
    owner: str,
    answer_text: str,
    exchange: list[dict[str, Any]] | None = None,
) -> None:
    """Keep the answer as soon as it is posted, so a retried turn can report without redoing it,
    and the `exchange` that led to it (for follow-ups), when there is one.

    Only while `owner` holds the turn: raises LeaseLost once another worker has it, whose own
    answer must not be overwritten by this late one."""
    values: dict[str, Any] = {"answer_text": answer_text}
    if exchange is not None:
        values["exchange"] = exchange
    saved = await session.exec(
        update(Turn)
        .where(
            col(Turn.id) == turn_id,
            col(Turn.lease_owner) == owner,
            col(Turn.status) == TurnStatus.RUNNING,
        )
        .values(**values)
    )
    if saved.rowcount != 1:
        raise LeaseLost(f"turn {turn_id} is not held by {owner}")


async def request_stop(*, session: AsyncSession, turn_id: int, user_id: str) -> bool:
    """Ask the worker running this turn to stop it; False when it isn't running any more
    (or someone asked first)."""
    asked = await session.exec(
        update(Turn)
        .where(
            col(Turn.id) == turn_id,
            col(Turn.status) == TurnStatus.RUNNING,
            col(Turn.stop_requested_by).is_(None),
        )
        .values(stop_requested_by=user_id)
    )
    return asked.rowcount == 1


async def stop_requested_by(*, session: AsyncSession, turn_id: int) -> str | None:
    found = await session.exec(select(Turn.stop_requested_by).where(col(Turn.id) == turn_id))
    return found.first()


async def record_feedback(
    *, session: AsyncSession, turn_id: int, task_id: int, user_id: str, rating: Rating
) -> None:
    """A person's 👍/👎 on an answer; clicking the other one changes their mind."""
    now = utcnow()
    await session.exec(
        insert(session, Feedback)
        .values(turn_id=turn_id, task_id=task_id, user_id=user_id, rating=rating, created_at=now)
        .on_conflict_do_update(
            index_elements=[col(Feedback.turn_id), col(Feedback.user_id)],
            set_={"rating": rating, "created_at": now},
        )
    )


async def ratings_since(
    *, session: AsyncSession, since: datetime, until: datetime | None = None
) -> dict[str, int]:
    """How many 👍 (good) and 👎 (bad) answers were rated in [since, until)."""
    query = select(Feedback.rating, func.count()).where(col(Feedback.created_at) >= since)
    if until is not None:
        query = query.where(col(Feedback.created_at) < until)
    rows = await session.exec(query.group_by(col(Feedback.rating)))
    return {rating: int(count) for rating, count in rows.all()}


async def forget_post(*, session: AsyncSession, key: str) -> None:
    """Drop the record of a post that was taken down (e.g. a running turn's Stop line)."""
    await session.exec(delete(SlackPost).where(col(SlackPost.key) == key))


async def installation_id(*, session: AsyncSession) -> str:
    """This installation's id, made on first use; every replica reads the same one."""
    await session.exec(
        insert(session, Installation)
        .values(key="this", id=uuid.uuid4().hex[:12], created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[col(Installation.key)])
    )
    found = await session.exec(select(Installation.id).where(col(Installation.key) == "this"))
    return found.one()
