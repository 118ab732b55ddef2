"""The durable task worker: N claim loops with leases and heartbeats, plus lease recovery."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import structlog

from bot.core.fence import holding

log = structlog.get_logger("pmteam.worker")


class Claimed(Protocol):
    """What the worker needs of a claimed turn: its id, and what to log it under."""

    @property
    def id(self) -> int | None: ...

    @property
    def task_id(self) -> int: ...

    @property
    def channel_id(self) -> str: ...


T = TypeVar("T", bound=Claimed)
T_co = TypeVar("T_co", bound=Claimed, covariant=True)


class Queue(Protocol[T_co]):
    """The queue the worker is given (the services implement it on the database)."""

    async def claim(self, *, owner: str, lease_seconds: float) -> T_co | None: ...

    async def heartbeat(self, *, turn_id: int, owner: str, lease_seconds: float) -> bool: ...

    async def release(self, *, turn_id: int, owner: str) -> bool: ...

    async def sweep(self) -> int: ...


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class TurnLease:
    """A claimed turn's lease, kept alive by a heartbeat while the turn is worked."""

    turn_id: int
    owner: str
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    seconds: float = float("inf")  # how long a renewal holds
    renewed: float = field(default_factory=time.monotonic)

    def held(self) -> bool:
        """Still ours by this process's own clock: not lost, and renewed within the lease
        (less a margin). A process that was paused past its lease finds out here, before its
        heartbeat has had a chance to run."""
        return not self.lost.is_set() and time.monotonic() - self.renewed < self.seconds * 0.9


@dataclass
class Worker(Generic[T]):
    queue: Queue[T]
    process: Callable[[T, TurnLease], Awaitable[None]]
    concurrency: int
    lease_seconds: float
    owner: str = field(default_factory=worker_identity)
    poll_interval: float = 2.0  # other replicas' turns are noticed at least this often
    # None when the scheduler's `lease-sweeper` job sweeps instead (one sweeper per process).
    sweep_interval: float | None = 60.0
    shutdown_grace: float = 30.0
    # Claim loops waiting for work, oldest first; `wake` sends one of them to claim.
    _idle: list[asyncio.Future[None]] = field(default_factory=list)
    # A wake-up that found every loop claiming or busy: the next loop to go idle claims again.
    _missed: bool = False
    _stopping: bool = False
    _loops: list[asyncio.Task[None]] = field(default_factory=list)
    _in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _leases: dict[str, TurnLease] = field(default_factory=dict)

    def wake(self) -> None:
        """A turn was queued: one idle claim loop goes to claim it.

        One, not all: the others would each run a claim transaction for the same turn (on
        SQLite, each one a write lock the next intake commit waits behind). A loop that gets a
        turn passes the wake-up on to one more, so a burst still fans out to every idle loop.
        A wake-up while no loop is idle is remembered, so a loop whose claim began just before
        the turn was committed looks again instead of sleeping through it."""
        if not self._wake_one():
            self._missed = True

    def _wake_one(self) -> bool:
        while self._idle:
            waiter = self._idle.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    async def _idle_wait(self) -> None:
        """Until a wake-up, or `poll_interval` (other replicas' turns don't wake this one)."""
        if self._missed or self._stopping:
            self._missed = False
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout=self.poll_interval)
        finally:
            if waiter in self._idle:
                self._idle.remove(waiter)

    @property
    def busy(self) -> int:
        return len(self._in_flight)

    @property
    def idle(self) -> int:
        """Claim loops waiting for a wake-up."""
        return sum(not waiter.done() for waiter in self._idle)

    async def start(self) -> None:
        await self.sweep()  # turns left running by a crashed process come back first
        self._loops = [
            asyncio.create_task(self._claim_loop(i), name=f"pmteam-worker-{i}")
            for i in range(self.concurrency)
        ]
        if self.sweep_interval is not None:
            sweeper = asyncio.create_task(
                self._sweep_loop(self.sweep_interval), name="pmteam-lease-sweeper"
            )
            self._loops.append(sweeper)

    async def sweep(self) -> int:
        requeued = await self.queue.sweep()
        if requeued:
            self.wake()
        return requeued

    async def stop(self) -> None:
        """Stop claiming, let running turns finish for a grace period, release the rest."""
        self._stopping = True
        while self._wake_one():  # every idle loop: each sees `_stopping` and ends
            pass
        running = list(self._in_flight.values())
        if running:
            log.info("waiting for running turns", count=len(running))
            _done, pending = await asyncio.wait(running, timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    async def _sweep_loop(self, interval: float) -> None:
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("lease sweep failed")

    async def _claim_loop(self, index: int) -> None:
        while not self._stopping:
            # Each claim gets its own owner token: if this turn's lease ever expires and the
            # turn is claimed again (even by this process), the old run's heartbeat and
            # completion no longer match and it stops instead of racing the new one.
            owner = f"{self.owner}:{uuid.uuid4().hex[:8]}"
            try:
                turn = await self.queue.claim(owner=owner, lease_seconds=self.lease_seconds)
            except Exception:
                log.exception("claiming a turn failed; retrying shortly")
                await asyncio.sleep(self.poll_interval)
                continue
            if turn is None:
                await self._idle_wait()
                continue
            # There may be more: pass the wake-up on to one idle loop. A busy loop claims
            # again as soon as its turn is done, so there is nothing to remember if none is.
            self._wake_one()
            assert turn.id is not None
            if self._stopping:
                # Claimed while shutdown began: hand it straight back.
                await self.queue.release(turn_id=turn.id, owner=owner)
                return
            task = asyncio.create_task(self._run(turn, owner), name=f"pmteam-turn-{turn.id}")
            self._in_flight[owner] = task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    raise
            finally:
                self._in_flight.pop(owner, None)

    async def _run(self, turn: T, owner: str) -> None:
        assert turn.id is not None
        lease = TurnLease(turn_id=turn.id, owner=owner, seconds=self.lease_seconds)
        self._leases[owner] = lease
        work = asyncio.current_task()
        assert work is not None
        beat = asyncio.create_task(self._heartbeat(lease, work))
        try:
            with (
                structlog.contextvars.bound_contextvars(
                    task=f"T-{turn.task_id}", turn=turn.id, channel=turn.channel_id
                ),
                holding(lease.held),
            ):
                await self.process(turn, lease)
        except asyncio.CancelledError:
            if lease.lost.is_set():
                # Another worker holds the turn now: stop here, posting and saving nothing more.
                log.warning("lease lost; the turn was stopped", turn=turn.id)
                return
            # Shutting down mid-turn: hand the turn back untouched for another worker.
            with contextlib.suppress(Exception):
                if await self.queue.release(turn_id=turn.id, owner=lease.owner):
                    log.info("turn released for another worker", turn=turn.id)
            raise
        except Exception:
            log.exception("turn processing crashed", turn=turn.id)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._leases.pop(owner, None)

    async def _heartbeat(self, lease: TurnLease, work: asyncio.Task[None]) -> None:
        """Renew the lease; once it is lost (or can't be renewed before it runs out), the turn
        is cancelled, because another worker may already have taken it over."""
        interval = max(self.lease_seconds / 3, 0.05)
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.queue.heartbeat(
                    turn_id=lease.turn_id, owner=lease.owner, lease_seconds=self.lease_seconds
                )
            except Exception:
                log.exception("heartbeat failed", turn=lease.turn_id)
                held = time.monotonic() - renewed < self.lease_seconds
            else:
                if held:
                    renewed = lease.renewed = time.monotonic()
            if not held:
                log.warning("lease lost", turn=lease.turn_id)
                lease.lost.set()
                work.cancel()
                return
