"""A turn whose lease is lost stops: the heartbeat that finds another owner cancels it, so a
paused or slow worker doesn't go on posting and saving beside the one that took over."""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime.worker import TurnLease, Worker
from bot.services.queue import TurnQueue
from storage.intake import record_intake
from storage.models import Turn


async def test_a_turn_whose_lease_is_taken_over_is_cancelled(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await record_intake(
            session=session,
            team_id="T1",
            channel_id="C1",
            thread_ts="1700000000.000001",
            message_ts="1700000000.000001",
            user_id="U1",
            text="add an index to orders",
            source="mention",
        )
        await session.commit()
    started = asyncio.Event()
    outcome: list[str] = []

    async def slow_turn(turn: Turn, lease: TurnLease) -> None:
        started.set()
        try:
            await asyncio.sleep(30)  # far longer than the test: only a cancel ends it early
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    worker: Worker[Turn] = Worker(
        queue=TurnQueue(sessions),
        process=slow_turn,
        concurrency=1,
        lease_seconds=0.3,  # a heartbeat every 0.1 s
        poll_interval=30,
        sweep_interval=None,
        shutdown_grace=1,
    )
    await worker.start()
    try:
        worker.wake()
        async with asyncio.timeout(5):
            await started.wait()
        # Another replica took the turn over (its lease ran out during a pause, say).
        async with sessions() as session:
            await session.exec(update(Turn).values(lease_owner="another-replica"))  # type: ignore[call-overload]
            await session.commit()
        async with asyncio.timeout(3):
            while not outcome:
                await asyncio.sleep(0.02)
        assert outcome == ["cancelled"]
        async with asyncio.timeout(3):
            while worker.busy:
                await asyncio.sleep(0.02)
        async with sessions() as session:
            turn = (await session.exec(select(Turn))).one()
        assert turn.lease_owner == "another-replica"  # nothing was handed back or overwritten
    finally:
        await worker.stop()
