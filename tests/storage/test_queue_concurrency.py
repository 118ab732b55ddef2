"""Many workers on two independent engines drain one queue: every turn once, threads in order."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_engine, session_factory
from storage.models import Task, TaskEvent, TaskStatus, Turn, TurnStatus
from storage.queue import claim_next_turn, complete_turn
from tests.storage.support import ask

TASKS = 20
TURNS_PER_TASK = 10
ENGINES = 2
WORKERS_PER_ENGINE = 3
LEASE_SECONDS = 600.0  # far longer than the test: no lease may expire and hand a turn out twice


@dataclass(frozen=True)
class Claim:
    order: int
    worker: str
    turn_id: int
    task_id: int
    seq: int


@dataclass
class Ledger:
    """What the workers saw, kept in memory and checked against the database afterwards."""

    claims: list[Claim] = field(default_factory=list)
    running: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    overlaps: list[tuple[int, int, set[int]]] = field(default_factory=list)
    finished: int = 0
    counter: itertools.count[int] = field(default_factory=itertools.count)


async def queue_turns(sessions: async_sessionmaker[AsyncSession]) -> None:
    """20 threads, each with its mention and 9 follow-ups, queued thread by thread.

    So a thread's follow-ups are the oldest turns in the queue while its first turn runs:
    a claim that took the oldest queued turn without regard to its thread would start them
    at once.
    """
    async with sessions() as session:
        for task in range(1, TASKS + 1):
            thread = f"1700000000.{task:06d}"
            for seq in range(1, TURNS_PER_TASK + 1):
                await ask(session, thread=thread, ts=f"{1700000000 + seq}.{task:06d}")


async def work(sessions: async_sessionmaker[AsyncSession], name: str, ledger: Ledger) -> None:
    total = TASKS * TURNS_PER_TASK
    rng = random.Random(name)
    while ledger.finished < total:
        async with sessions.begin() as session:
            turn = await claim_next_turn(session=session, owner=name, lease_seconds=LEASE_SECONDS)
        if turn is None:
            await asyncio.sleep(0.002)  # every runnable turn is taken; others are finishing
            continue
        assert turn.id is not None
        running = ledger.running[turn.task_id]
        if running:
            ledger.overlaps.append((turn.task_id, turn.seq, set(running)))
        running.add(turn.seq)
        ledger.claims.append(Claim(next(ledger.counter), name, turn.id, turn.task_id, turn.seq))
        await asyncio.sleep(rng.random() * 0.003)  # the "work", letting others interleave
        # Leave the in-memory running set before the database marks the turn done, so
        # the tracked interval lies strictly inside the turn's real running time.
        running.discard(turn.seq)
        async with sessions.begin() as session:
            await complete_turn(
                session=session,
                turn_id=turn.id,
                owner=name,
                answer_text=f"answer {turn.task_id}.{turn.seq}",
                task_status=TaskStatus.COMPLETED,
            )
        ledger.finished += 1


async def test_two_engines_drain_the_queue_once_each_in_thread_order(database_url: str) -> None:
    setup_engine = create_engine(database_url)
    engines = [create_engine(database_url) for _ in range(ENGINES)]
    try:
        await queue_turns(session_factory(setup_engine))
        ledger = Ledger()
        # A worker that raises cancels the others; a queue that stops draining fails in time.
        async with asyncio.timeout(60), asyncio.TaskGroup() as workers:
            for e, engine in enumerate(engines):
                sessions = session_factory(engine)  # one pool per replica
                for w in range(WORKERS_PER_ENGINE):
                    workers.create_task(work(sessions, f"replica{e}-worker{w}", ledger))

        async with session_factory(setup_engine)() as session:
            turns = list((await session.exec(select(Turn))).all())
            tasks = list((await session.exec(select(Task))).all())
            event_counts = dict(
                (
                    await session.exec(
                        select(TaskEvent.task_id, func.count()).group_by(col(TaskEvent.task_id))
                    )
                ).all()
            )
    finally:
        for engine in [setup_engine, *engines]:
            await engine.dispose()

    # Every turn was claimed exactly once, and none was lost.
    assert len(turns) == TASKS * TURNS_PER_TASK
    claimed = Counter(claim.turn_id for claim in ledger.claims)
    assert set(claimed) == {turn.id for turn in turns}
    assert [turn_id for turn_id, n in claimed.items() if n > 1] == []
    assert all(turn.status == TurnStatus.DONE and turn.attempts == 0 for turn in turns)
    # Both replicas did some of the work.
    assert {claim.worker.split("-")[0] for claim in ledger.claims} == {"replica0", "replica1"}

    # Within a thread: started strictly in seq order, never two running at once.
    assert ledger.overlaps == []
    by_task: dict[int, list[int]] = defaultdict(list)
    for claim in sorted(ledger.claims, key=lambda c: c.order):
        by_task[claim.task_id].append(claim.seq)
    assert by_task == {task.id: list(range(1, TURNS_PER_TASK + 1)) for task in tasks}
    # The database's own record agrees: each turn started after its predecessor finished.
    spans_by_task = defaultdict(list)
    for turn in sorted(turns, key=lambda t: (t.task_id, t.seq)):
        spans_by_task[turn.task_id].append((turn.started_at, turn.finished_at))
    for spans in spans_by_task.values():
        for (_, finished), (next_started, _) in itertools.pairwise(spans):
            assert finished is not None and next_started is not None
            assert finished <= next_started

    # Each task: queued once at intake, then exactly working -> completed per turn.
    assert all(task.status == TaskStatus.COMPLETED for task in tasks)
    assert event_counts == {task.id: 1 + 2 * TURNS_PER_TASK for task in tasks}
