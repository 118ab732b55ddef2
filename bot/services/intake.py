"""Intake: a Slack message addressed to pmteam becomes a durable queued turn, in milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import task_refusal
from bot.core.rate_limit import RateLimiter
from bot.services.deps import Deps, log
from bot.slack.reactions import Mark
from storage.db import checkpoint_wal, create_blocking_engine
from storage.intake import IntakeMessage, IntakeRecord, commit_intakes
from storage.records import claim_dedupe_key


class WriterClosed(RuntimeError):
    """The intake writer is shutting down and takes no more messages."""


class IntakeWriter:
    """Group commit for the ack path: listeners wait here for their turn to be durable.

    One transaction takes every message that arrived while the previous one was committing,
    so a burst of events costs a few commits instead of one each. The transaction runs in a
    thread of its own, on a blocking connection: the event loop hands a batch over once and
    gets it back once, and goes on serving requests meanwhile (the database driver releases
    the GIL while it works). A listener's `submit` returns only after the commit that holds
    its message, so the ack still follows the commit.
    """

    def __init__(
        self, database_url: str, max_batch: int = 200, checkpoint_every: float = 1.0
    ) -> None:
        self.database_url = database_url
        self.max_batch = max_batch
        self.checkpoint_every = checkpoint_every
        self._pending: list[tuple[IntakeMessage, asyncio.Future[IntakeRecord]]] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._connection: Connection | None = None  # kept open, used only in the thread
        self._thread: ThreadPoolExecutor | None = None
        self._checkpoint_thread: ThreadPoolExecutor | None = None
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpointed = float("-inf")  # the first batch starts one
        self._closing = False
        self.batches = 0
        self.checkpoints = 0

    @property
    def engine(self) -> Engine | None:
        """The blocking engine the writer commits through; None until its first message."""
        return self._engine

    async def submit(self, message: IntakeMessage) -> IntakeRecord:
        if self._closing:
            # Bolt answers 500 and Slack delivers the event again later, to a running pmteam.
            raise WriterClosed("pmteam is shutting down; the event was not recorded")
        future: asyncio.Future[IntakeRecord] = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        self._wake.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="pmteam-intake-writer")
        return await future

    async def close(self) -> None:
        """Take no more messages, commit those already taken, then let go of the database."""
        self._closing = True
        self._wake.set()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner
        self._fail_pending(WriterClosed("pmteam is shutting down; the event was not recorded"))
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        if self._connection is not None and self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._connection.close)
        for thread in (self._thread, self._checkpoint_thread):
            if thread is not None:
                thread.shutdown(wait=True)
        if self._engine is not None:
            self._engine.dispose()

    async def _run(self) -> None:
        if self._engine is None:  # made on first use: processes that never take a task skip it
            try:
                # Synced: Slack is told an event is safe only once it is on disk.
                engine = create_blocking_engine(
                    self.database_url, wal_autocheckpoint=False, synced=True
                )
            except Exception as exc:
                self._fail_pending(exc)  # the next message tries again
                raise
            self._engine = engine
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pmteam-intake")
            if engine.dialect.name == "sqlite":
                self._checkpoint_thread = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="pmteam-checkpoint"
                )
        while True:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._write(batch)
            if self._closing:
                return
            self._wake.clear()
            await self._wake.wait()

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, []
        for _, future in pending:
            if not future.done():
                future.set_exception(exc)

    async def _write(self, batch: list[tuple[IntakeMessage, asyncio.Future[IntakeRecord]]]) -> None:
        self.batches += 1
        engine, messages = self._engine, [message for message, _ in batch]
        assert engine is not None, "made by _run before the first batch"
        try:
            intakes = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._commit, engine, messages
            )
        except Exception as exc:
            if len(batch) > 1:
                # One bad message must not fail its neighbours: retry them one by one.
                for item in batch:
                    await self._write([item])
                return
            _, future = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        for (_, future), intake in zip(batch, intakes, strict=True):
            if not future.done():
                future.set_result(intake)
        self._start_checkpoint(engine)

    def _commit(self, engine: Engine, messages: list[IntakeMessage]) -> list[IntakeRecord]:
        """In the writer's thread, on the connection it keeps. A connection the server dropped
        (a restart, a failover, an idle timeout) is replaced and the batch tried once more;
        after any other failure the next batch starts on a new connection too."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = engine.connect()
            try:
                return commit_intakes(self._connection, messages)
            except DBAPIError as exc:
                self._drop_connection()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
            except Exception:
                self._drop_connection()
                raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def _start_checkpoint(self, engine: Engine) -> None:
        """SQLite: copy the WAL back into the database beside the ack path, not on it.

        About one commit in seventy would otherwise run the checkpoint itself, with an fsync,
        and hold its acks for several milliseconds. At most one runs at a time, at most once
        every `checkpoint_every` seconds while messages keep coming."""
        if self._checkpoint_thread is None:
            return
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        now = time.monotonic()
        if now - self._checkpointed < self.checkpoint_every:
            return
        self._checkpointed = now
        self.checkpoints += 1
        self._checkpoint = asyncio.get_running_loop().run_in_executor(
            self._checkpoint_thread, checkpoint_wal, engine
        )
        self._checkpoint.add_done_callback(_log_checkpoint_failure)


def _log_checkpoint_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("WAL checkpoint failed; the next one will try again", exc_info=done.exception())


async def claim_reply(
    *, sessions: async_sessionmaker[AsyncSession], message: IntakeMessage
) -> bool:
    """True the first time pmteam answers this message without taking it (a refusal), False
    for Slack's retries of it: they are acknowledged, not answered again."""
    key = f"reply:{message.team_id}:{message.channel_id}:{message.message_ts}"
    async with sessions.begin() as session:
        return await claim_dedupe_key(session=session, key=key)


RATE_LIMITED_REPLY = (
    "You've sent me a lot of tasks in the last few minutes; I'm working through them. "
    "Please wait a little and mention me again."
)


@dataclass
class Intake:
    """The ack path of every message addressed to pmteam: access checks, the durable record,
    then (after the ack) the worker's wake-up, the 👀 and any refusal."""

    deps: Deps
    writer: IntakeWriter
    limiter: RateLimiter
    wake: Callable[[], None]  # the worker's: a turn was queued

    async def take(self, message: IntakeMessage) -> None:
        """Runs before the ack: only the DB write. Slack calls go to background tasks."""
        deps = self.deps
        settings = deps.settings
        refusal = task_refusal(
            user_id=message.user_id,
            channel_id=message.channel_id,
            source=message.source,
            allowed_channels=settings.allowed_channels,
            allowed_users=settings.allowed_users,
        )
        if refusal is None and not self.limiter.allow(message.user_id, message.message_ts):
            deps.metrics.inc("pmteam_intake_total", outcome="rate_limited")
            log.warning("rate limited", user=message.user_id, ts=message.message_ts)
            refusal = RATE_LIMITED_REPLY
        elif refusal is not None:
            deps.metrics.inc("pmteam_intake_total", outcome="refused")
        if refusal is not None:
            if await claim_reply(sessions=deps.sessions, message=message):
                deps.spawn(self._reply(message, refusal), name="pmteam-refusal")
            return
        intake = await self.writer.submit(message)
        if not intake.created:
            deps.metrics.inc("pmteam_intake_total", outcome="duplicate")
            log.info("duplicate delivery ignored", ts=message.message_ts, task=intake.task_ref)
            return
        deps.metrics.inc("pmteam_intake_total", outcome="queued")
        log.info(
            "turn queued",
            task=intake.task_ref,
            turn=intake.turn_id,
            seq=intake.seq,
            source=message.source,
        )
        # Both only queue work for after the ack: the claim, and the 👀 (paced to Slack's limits).
        self.wake()
        deps.seen.mark(
            Mark(
                channel_id=message.channel_id,
                ts=message.message_ts,
                thread_ts=message.thread_ts,
                assistant=message.source == "assistant",
            )
        )

    async def _reply(self, message: IntakeMessage, text: str) -> None:
        await self.deps.client.chat_postMessage(
            channel=message.channel_id, thread_ts=message.thread_ts, text=text
        )
