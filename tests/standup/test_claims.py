"""The standup claim row on SQLite and PostgreSQL: one winner, takeover after the lease only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.standups import (
    ClaimResult,
    StandupClaim,
    claim_standup,
    last_posted_standup,
    record_standup_posted,
    renew_standup_lease,
)

T0 = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)
LEASE = timedelta(minutes=5)


async def _claim(
    sessions: async_sessionmaker[AsyncSession], owner: str, now: datetime, period: str = "p1"
) -> StandupClaim:
    async with sessions.begin() as session:
        return await claim_standup(
            session=session, channel_id="C1", period=period, owner=owner, lease=LEASE, now=now
        )


async def test_one_of_many_concurrent_claims_wins_and_a_dead_claim_is_taken_over_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await asyncio.gather(*(_claim(sessions, f"p{i}", T0) for i in range(8)))
    assert sorted(c.result for c in first).count(ClaimResult.CLAIMED) == 1
    assert {c.result for c in first} == {ClaimResult.CLAIMED, ClaimResult.BUSY}
    winner = next(c for c in first if c.result is ClaimResult.CLAIMED)

    # Within the lease nobody else gets it; after it, exactly one process does.
    assert (await _claim(sessions, "late", T0 + LEASE - timedelta(seconds=1))).result is (
        ClaimResult.BUSY
    )
    later = T0 + LEASE + timedelta(seconds=1)
    second = await asyncio.gather(*(_claim(sessions, f"q{i}", later) for i in range(8)))
    assert sorted(c.result for c in second).count(ClaimResult.RECLAIMED) == 1
    new_owner = next(c for c in second if c.result is ClaimResult.RECLAIMED)

    # The first owner has lost it: it may not post any more.
    assert winner.standup.id is not None
    async with sessions.begin() as session:
        assert not await renew_standup_lease(
            session=session,
            standup_id=winner.standup.id,
            owner=winner.standup.lease_owner or "",
            lease=LEASE,
            now=later,
        )
        assert await record_standup_posted(
            session=session, standup_id=winner.standup.id, ts="1.000100", covered_until=later
        )
    assert new_owner.standup.lease_owner != winner.standup.lease_owner
    done = await _claim(sessions, "after", later + timedelta(hours=1))
    assert done.result is ClaimResult.DONE and done.standup.ts == "1.000100"


async def test_the_previous_standup_is_the_latest_posted_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for index, period in enumerate(("p1", "p2", "p3")):
        claim = await _claim(sessions, "o", T0 + timedelta(days=index), period=period)
        assert claim.standup.id is not None
        if period != "p3":  # p3 is still being posted
            async with sessions.begin() as session:
                await record_standup_posted(
                    session=session,
                    standup_id=claim.standup.id,
                    ts=f"{index}.0",
                    covered_until=T0 + timedelta(days=index),
                )
    async with sessions() as session:
        previous = await last_posted_standup(session=session, channel_id="C1")
        assert previous is not None and previous.period == "p2"
        assert await last_posted_standup(session=session, channel_id="C2") is None
