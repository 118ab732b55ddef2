"""Waking the worker: a queued turn sends one idle claim loop to claim it, not all of them,
a burst still fans out to every idle loop, and a wake-up that arrives mid-claim is not lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime.worker import TurnLease, Worker
from bot.services.queue import TurnQueue
from storage.db import create_blocking_engine
from storage.intake import IntakeMessage, record_intake, write_intakes
from storage.models import Turn
from storage.types import utcnow


def _is_claim(statement: str) -> bool:
    """The claim's SELECT: queued turns with no earlier or running turn in their task."""
    return statement.lstrip().startswith("SELECT turn.id") and "EXISTS" in statement


@pytest.fixture
def claims(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every claim query the worker runs, as it runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _is_claim(statement):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", count)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def _ask(sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    ts = f"1700000000.{n:06d}"
    async with sessions.begin() as session:
        await record_intake(
            session=session,
            team_id="T1",
            channel_id="C1",
            thread_ts=ts,
            message_ts=ts,
            user_id="U1",
            text=f"task {n}",
            source="mention",
        )


def _worker(
    sessions: async_sessionmaker[AsyncSession],
    process: Callable[[Turn, TurnLease], Any],
    concurrency: int,
) -> Worker[Turn]:
    # A poll far longer than any test: whatever is claimed was claimed because of a wake-up.
    return Worker(
        queue=TurnQueue(sessions),
        process=process,
        concurrency=concurrency,
        lease_seconds=60,
        poll_interval=30,
        sweep_interval=None,
        shutdown_grace=1,
    )


async def test_a_queued_turn_wakes_one_idle_loop_not_all(
    sessions: async_sessionmaker[AsyncSession], claims: list[str]
) -> None:
    processed: list[int] = []

    async def process(turn: Turn, _lease: TurnLease) -> None:
        assert turn.id is not None
        processed.append(turn.id)

    worker = _worker(sessions, process, concurrency=4)
    await worker.start()
    try:
        await _until(lambda: worker.idle == 4)
        claims.clear()
        await _ask(sessions, 1)
        worker.wake()
        await _until(lambda: len(processed) == 1 and worker.idle == 4)
        await asyncio.sleep(0.2)  # room for any claim a stray wake-up would cause
        # The woken loop claims the turn and passes the wake-up to one more loop, which finds
        # nothing; the first claims again once its turn is done. The other two sleep on.
        assert len(claims) == 3
        assert len(processed) == 1
    finally:
        await worker.stop()


async def test_one_wake_up_fans_out_to_every_queued_turn(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    running: set[int] = set()
    release = asyncio.Event()

    async def process(turn: Turn, _lease: TurnLease) -> None:
        assert turn.id is not None
        running.add(turn.id)
        await release.wait()

    worker = _worker(sessions, process, concurrency=4)
    await worker.start()
    try:
        await _until(lambda: worker.idle == 4)
        for n in (1, 2, 3):
            await _ask(sessions, n)
        worker.wake()  # once, for three turns in three threads
        await _until(lambda: len(running) == 3)
        assert worker.busy == 3  # all three at once, each loop passing the wake-up on
        await _until(lambda: worker.idle == 1)
        release.set()
        await _until(lambda: worker.busy == 0 and worker.idle == 4)
    finally:
        release.set()
        await worker.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_wake_up_during_a_claim_is_not_slept_through(
    database_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The turn is committed, and the worker woken, after the claim's query has looked and
    found nothing but before the claim returns. The loop must look again at once, not sleep
    for its 30-second poll. PostgreSQL only: on SQLite the claim holds the write lock, so no
    turn can commit in between."""
    processed: list[int] = []

    async def process(turn: Turn, _lease: TurnLease) -> None:
        assert turn.id is not None
        processed.append(turn.id)

    worker = _worker(sessions, process, concurrency=1)
    writer = create_blocking_engine(database_url)
    armed = False

    def commit_a_turn_mid_claim(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal armed
        if armed and _is_claim(statement):
            armed = False
            with writer.begin() as connection:
                write_intakes(
                    connection,
                    [
                        IntakeMessage(
                            team_id="T1",
                            channel_id="C1",
                            thread_ts="1700000000.000009",
                            message_ts="1700000000.000009",
                            user_id="U1",
                            text="a task that lands mid-claim",
                            source="mention",
                        )
                    ],
                    utcnow(),
                )
            worker.wake()

    event.listen(engine.sync_engine, "after_cursor_execute", commit_a_turn_mid_claim)
    await worker.start()
    try:
        await _until(lambda: worker.idle == 1)
        armed = True
        worker.wake()
        await _until(lambda: len(processed) == 1, timeout=5)
        assert not armed
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", commit_a_turn_mid_claim)
        await worker.stop()
        writer.dispose()
