"""The per-person rate limit lives in the database: it holds across replicas, counts each Slack
message once wherever it is delivered, and lets exactly one of two racers take the last slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import Pmteam
from bot.services.intake import RATE_LIMITED_REPLY
from sandbox.slack import FakeSlack
from storage.db import create_engine, session_factory
from storage.models import RateEvent, Task, Turn
from storage.rate_limits import allow_turn
from tests.conftest import _truncate_postgres
from tests.e2e.conftest import (
    ALICE,
    BOB,
    ENGINEERING,
    StartPmteam,
    app_mention_delivery,
    bot_messages,
    mention,
    rows,
    start_pmteam,
    wait_until_idle,
)

__all__ = ["start_pmteam"]  # the e2e fixture, used here outside tests/e2e

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[Sessions, Sessions]]:
    """Two replicas' session factories: independent engines (and pools) on one database."""
    engines = [create_engine(database_url), create_engine(database_url)]
    try:
        yield session_factory(engines[0]), session_factory(engines[1])
    finally:
        for engine in engines:
            await engine.dispose()


async def allow(
    sessions: Sessions, user: str, ts: str, *, limit: int, at: float = 0, channel: str = "C1"
) -> bool:
    """One delivery of message `ts` by `user` to one replica, in its own transaction."""
    async with sessions.begin() as session:
        return await allow_turn(
            session=session,
            user_id=user,
            team_id="T1",
            channel_id=channel,
            message_ts=ts,
            limit=limit,
            window=WINDOW,
            now=T0 + timedelta(seconds=at),
        )


async def counted(sessions: Sessions, user: str) -> list[str]:
    async with sessions() as session:
        found = await session.exec(
            select(RateEvent.message_ts)
            .where(col(RateEvent.user_id) == user)
            .order_by(col(RateEvent.message_ts))
        )
        return list(found.all())


async def test_the_limit_holds_across_two_replicas(replicas: tuple[Sessions, Sessions]) -> None:
    a, b = replicas

    assert await allow(a, "U1", "1.1", limit=3, at=0)
    assert await allow(b, "U1", "2.1", limit=3, at=1)
    # Slack's retry of the first message, delivered to the other replica: counted once.
    assert await allow(b, "U1", "1.1", limit=3, at=2)
    assert await allow(a, "U1", "3.1", limit=3, at=3)
    # The fourth message is refused on either replica, each having seen only some of them.
    assert not await allow(b, "U1", "4.1", limit=3, at=4)
    assert not await allow(a, "U1", "4.1", limit=3, at=5)  # its retry, refused again
    # A retry of a counted message is still allowed once the budget is spent.
    assert await allow(a, "U1", "2.1", limit=3, at=6)
    assert await counted(a, "U1") == ["1.1", "2.1", "3.1"]


async def test_refusals_spend_nothing_and_expired_events_are_pruned(
    replicas: tuple[Sessions, Sessions],
) -> None:
    a, b = replicas
    assert await allow(a, "U2", "0.2", limit=1, at=0)  # someone else, never pruned by U1
    assert await allow(a, "U1", "1.1", limit=1, at=0)
    for i in range(5):  # refused over and over: none of them is kept
        assert not await allow(b, "U1", f"2.{i}", limit=1, at=100 + i)
    assert await counted(a, "U1") == ["1.1"]

    # The window has passed: the first message no longer counts, and is gone.
    assert await allow(b, "U1", "3.1", limit=1, at=WINDOW.total_seconds())
    assert await counted(a, "U1") == ["3.1"]
    assert await counted(a, "U2") == ["0.2"]
    assert not await allow(a, "U1", "4.1", limit=1, at=WINDOW.total_seconds() + 1)


async def test_concurrent_attempts_for_the_last_slot_let_exactly_one_through(
    replicas: tuple[Sessions, Sessions],
) -> None:
    a, b = replicas
    for round_ in range(20):
        user = f"U{round_}"
        assert await allow(a, user, f"{round_}.0", limit=2)  # one slot left
        results = await asyncio.gather(
            allow(a, user, f"{round_}.1", limit=2), allow(b, user, f"{round_}.2", limit=2)
        )
        assert sorted(results) == [False, True], f"round {round_}: {results}"
        assert len(await counted(a, user)) == 2


async def test_one_message_racing_on_two_replicas_counts_once(
    replicas: tuple[Sessions, Sessions],
) -> None:
    a, b = replicas
    for round_ in range(10):
        user = f"U{round_}"
        results = await asyncio.gather(
            allow(a, user, f"{round_}.1", limit=1), allow(b, user, f"{round_}.1", limit=1)
        )
        assert results == [True, True]
        assert await counted(a, user) == [f"{round_}.1"]
        assert not await allow(b, user, f"{round_}.2", limit=1)


@pytest.mark.reliability("The rate limit across two replicas", kind="attack")
async def test_two_pmteam_replicas_share_one_rate_limit(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, postgres_database: str
) -> None:
    _truncate_postgres(postgres_database)
    first = await start_pmteam(database_url=postgres_database, PMTEAM_RATE_LIMIT_PER_USER=2)
    second = await start_pmteam(database_url=postgres_database, PMTEAM_RATE_LIMIT_PER_USER=2)

    def to(app: Pmteam) -> None:
        fake_slack.set_event_target(f"http://127.0.0.1:{app.http_port}/slack/events")

    to(first)
    one = await mention(fake_slack, "design the refunds API")
    # Slack's retry of the first mention reaches the other replica: not a new message there.
    to(second)
    delivery = app_mention_delivery(one)
    retry = await fake_slack.deliver_event(
        delivery.payload["event"], event_id=delivery.event_id, retry_num=1
    )
    assert retry.status_codes == [200]
    two = await mention(fake_slack, "design the invoices API")
    # Each replica has seen one new message from Alice; together they are her two.
    to(first)
    three = await mention(fake_slack, "design the payments API")
    to(second)
    bobs = await mention(fake_slack, "design the ledger API", user=BOB)  # counted apart

    await fake_slack.wait_for(lambda: bool(bot_messages(fake_slack, ENGINEERING, three.ts)))
    for app in (first, second):
        await wait_until_idle(app, fake_slack, turns=3, timeout=30)

    turns = await rows(first, Turn)
    assert sorted((t.user_id, t.message_ts) for t in turns) == sorted(
        [(ALICE, one.ts), (ALICE, two.ts), (BOB, bobs.ts)]
    )
    assert len(await rows(first, Task)) == 3
    [refusal] = bot_messages(fake_slack, ENGINEERING, three.ts)
    assert refusal.text == RATE_LIMITED_REPLY
    limited = sum(
        count
        for app in (first, second)
        for (name, labels), count in app.deps.metrics.counters.items()
        if name == "pmteam_intake_total" and dict(labels).get("outcome") == "rate_limited"
    )
    assert limited == 1
    assert sorted(await counted(first.deps.sessions, ALICE)) == sorted([one.ts, two.ts])
