"""The per-person rate limit on new turns, kept in the database so it holds across replicas."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_name, insert
from storage.models import RateEvent
from storage.types import utcnow

# The first key of the two-key PostgreSQL advisory lock taken per person (the second is
# hashtext(user_id)). Two-key locks never conflict with the one-key migration lock.
RATE_LOCK_CLASS = int.from_bytes(
    hashlib.sha256(b"pmteam-rate-limit").digest()[:4], "big", signed=True
)


async def allow_turn(
    *,
    session: AsyncSession,
    user_id: str,
    team_id: str,
    channel_id: str,
    message_ts: str,
    limit: int,
    window: timedelta,
    now: datetime | None = None,
) -> bool:
    """Whether this message may start a new turn: at most `limit` per person per `window`.

    Each Slack message (team, channel, ts) is counted once: its retries, and the app_mention +
    message double delivery, are allowed again without spending more. A message over the limit
    is not recorded, so refusals spend nothing. The person's rows older than the window are
    pruned here. `limit` <= 0 means no limit and touches nothing.

    Runs in the caller's write transaction (`sessions.begin()`). Two replicas racing for a
    person's last slot are serialised: on PostgreSQL by a per-person advisory lock held to
    the end of the transaction, on SQLite by the write lock its BEGIN IMMEDIATE takes."""
    if limit <= 0:
        return True
    now = now or utcnow()
    cutoff = now - window
    if dialect_name(session) == "postgresql":
        await session.exec(
            select(func.pg_advisory_xact_lock(RATE_LOCK_CLASS, func.hashtext(user_id)))
        )
    inserted = await session.exec(
        insert(session, RateEvent)
        .values(
            user_id=user_id,
            team_id=team_id,
            channel_id=channel_id,
            message_ts=message_ts,
            created_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[
                col(RateEvent.team_id),
                col(RateEvent.channel_id),
                col(RateEvent.message_ts),
            ]
        )
        .returning(col(RateEvent.id))  # psycopg's rowcount is -1 here
    )
    event_id = inserted.scalar()
    if event_id is None:
        return True  # this message was counted already
    await session.exec(
        delete(RateEvent).where(
            col(RateEvent.user_id) == user_id, col(RateEvent.created_at) <= cutoff
        )
    )
    counted = await session.exec(
        select(func.count())
        .select_from(RateEvent)
        .where(col(RateEvent.user_id) == user_id, col(RateEvent.created_at) > cutoff)
    )
    if counted.one() <= limit:
        return True
    await session.exec(delete(RateEvent).where(col(RateEvent.id) == event_id))
    return False
