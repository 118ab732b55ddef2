"""The per-person rate limit counts each Slack message once, and forgets after its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.rate_limit import RateLimit
from storage.models import RateEvent
from storage.rate_limits import allow_turn

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def allow(
    sessions: async_sessionmaker[AsyncSession],
    user: str,
    ts: str,
    *,
    at: float,
    limit: int,
    window: float = 600,
    channel: str = "C1",
) -> bool:
    """One delivery of message `ts` by `user`, `at` seconds after T0, in its own transaction."""
    async with sessions.begin() as session:
        return await allow_turn(
            session=session,
            user_id=user,
            team_id="T1",
            channel_id=channel,
            message_ts=ts,
            limit=limit,
            window=timedelta(seconds=window),
            now=T0 + timedelta(seconds=at),
        )


async def events(sessions: async_sessionmaker[AsyncSession]) -> list[RateEvent]:
    async with sessions() as session:
        return list((await session.exec(select(RateEvent))).all())


async def test_retries_and_double_delivery_of_one_message_count_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert await allow(sessions, "U1", "1.1", at=0, limit=2)
    assert await allow(sessions, "U1", "1.1", at=1, limit=2)  # Slack's retry of the same message
    assert await allow(sessions, "U1", "1.1", at=2, limit=2)  # the message event for the mention
    assert await allow(sessions, "U1", "2.1", at=3, limit=2)
    assert not await allow(sessions, "U1", "3.1", at=4, limit=2)  # a third within the window
    assert await allow(sessions, "U2", "3.2", at=4, limit=2)  # other people are counted apart
    # A ts is one message per channel: the same ts elsewhere is another message.
    assert not await allow(sessions, "U1", "1.1", at=5, limit=2, channel="C2")


async def test_the_window_slides(sessions: async_sessionmaker[AsyncSession]) -> None:
    assert await allow(sessions, "U1", "1.1", at=0, limit=1, window=10)
    assert not await allow(sessions, "U1", "2.1", at=5, limit=1, window=10)
    assert await allow(sessions, "U1", "3.1", at=10, limit=1, window=10)


async def test_zero_means_no_limit(sessions: async_sessionmaker[AsyncSession]) -> None:
    assert RateLimit(limit=0, window=10).unlimited
    assert not RateLimit(limit=1, window=10).unlimited
    assert RateLimit(limit=1, window=600).span == timedelta(minutes=10)
    for i in range(30):
        assert await allow(sessions, "U1", f"{i}.1", at=0, limit=0, window=10)
    assert await events(sessions) == []  # nothing is counted, nothing is written
