"""Intake: a Slack message addressed to pmteam becomes a durable queued turn, in milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import task_refusal
from bot.core.rate_limit import RateLimit
from bot.core.storable import storable
from bot.services.deps import Deps, log
from bot.slack.reactions import Mark
from storage.db import create_blocking_engine
from storage.intake import (
    IntakeMessage,
    IntakeRecord,
    unstorable,
    worth_retrying,
    write_intakes,
)
from storage.rate_limits import allow_turn
from storage.records import claim_dedupe_key
from storage.types import utcnow

ATTEMPTS = 3  # a race with another replica, or PostgreSQL breaking a deadlock, is retried


def splits_batch(exc: BaseException) -> bool:
    """An error about the values of one message (a key taken, a value too long, text no
    database can encode): the rest of its batch is recorded without it. Any other error (a
    locked or unreachable database) would fail each message alone just the same, so the batch
    fails at once."""
    return isinstance(exc, IntegrityError) or unstorable(exc) is not None


# A message waiting for its commit, and where its record (None: a reply outside any task) goes.
Pending = tuple[IntakeMessage, "asyncio.Future[IntakeRecord | None]"]


class WriterClosed(RuntimeError):
    """The intake writer is shutting down and takes no more messages."""


class IntakeWriter:
    """Group commit for the ack path: listeners wait here for their turn to be durable.

    One transaction takes every message that arrived while the previous one was committing,
    so a burst of events costs a few commits instead of one each. A listener's `submit`
    returns only after the commit that holds its message, so the ack follows the commit.

    The transaction runs in a thread on a blocking connection: the event loop hands a batch
    over once and gets it back once. Through aiosqlite every statement is several round trips
    between the loop and the driver's thread, with the write lock held across them all; that
    put the p99 ack at 20-36 ms at 200 events/s (bench/README.md).
    """

    def __init__(self, database_url: str, max_batch: int = 200) -> None:
        self.database_url = database_url
        self.max_batch = max_batch
        self._pending: list[Pending] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._closing = False
        self.batches = 0

    @property
    def engine(self) -> Engine | None:
        """The engine the writer commits through; None until its first message."""
        return self._engine

    async def submit(self, message: IntakeMessage) -> IntakeRecord | None:
        """The message's record once it is committed; None for a thread reply outside any task."""
        if self._closing:
            # Bolt answers 500 and Slack delivers the event again later, to a running pmteam.
            raise WriterClosed("pmteam is shutting down; the event was not recorded")
        future: asyncio.Future[IntakeRecord | None] = asyncio.get_running_loop().create_future()
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
        if self._engine is not None:
            await asyncio.to_thread(self._engine.dispose)

    async def _run(self) -> None:
        if self._engine is None:  # made on first use: processes that never take a task skip it
            try:
                # Synced: Slack is told an event is safe only once it is on disk.
                self._engine = create_blocking_engine(self.database_url, synced=True, connections=1)
            except Exception as exc:
                self._fail_pending(exc)  # the next message tries again
                raise
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

    async def _write(self, batch: list[Pending]) -> None:
        self.batches += 1
        try:
            records = await asyncio.to_thread(self._commit, [m for m, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or not splits_batch(exc):
                _fail(batch, exc)
                return
            # One bad message must not fail its neighbours: retry them one by one.
            for item in batch:
                await self._write([item])
            return
        for (_, future), record in zip(batch, records, strict=True):
            if not future.done():
                future.set_result(record)

    def _commit(self, messages: list[IntakeMessage]) -> list[IntakeRecord | None]:
        """The messages in one transaction, committed; tried again in a new one when another
        replica got there first (see `worth_retrying`). Blocking: runs in a thread."""
        assert self._engine is not None, "made by _run before the first batch"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._engine.begin() as connection:
                    return write_intakes(connection, messages, utcnow())
            except DBAPIError as exc:
                if attempt == ATTEMPTS or not worth_retrying(exc):
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")


def _fail(batch: list[Pending], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


async def claim_reply(
    *, sessions: async_sessionmaker[AsyncSession], message: IntakeMessage
) -> bool:
    """True the first time pmteam answers this message without taking it (a refusal), False
    for Slack's retries of it: they are acknowledged, not answered again."""
    key = f"reply:{message.team_id}:{message.channel_id}:{message.message_ts}"
    async with sessions.begin() as session:
        return await claim_dedupe_key(session=session, key=key)


BARE_MENTION_REPLY = (
    "Hi! I'm pmteam, your team's backend engineer. Mention me with a task in a thread and I'll "
    "research it, answer here and report to your project manager. For example:\n"
    "• _@pmteam design a paginated REST API for orders_\n"
    "• _@pmteam why is this query slow? `SELECT … FROM invoices WHERE …`_\n"
    "• _@pmteam plan a durable job queue on PostgreSQL_\n"
    "Once I'm on a thread, reply in it to follow up; no need to mention me again."
)
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
    limit: RateLimit  # new turns per person, counted in the database across replicas
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
        if message.source == "thread":
            # Chat in a thread: a follow-up if the thread is a task, otherwise not pmteam's
            # business. Never answered with a refusal: nobody addressed pmteam.
            # Not rate-limited: a thread's turns run one at a time, whoever writes in it.
            if refusal is None:
                await self._record(message)
            return
        if refusal is None and not message.text:
            deps.metrics.inc("pmteam_intake_total", outcome="bare_mention")
            if await claim_reply(sessions=deps.sessions, message=message):
                deps.spawn(self._reply(message, BARE_MENTION_REPLY), name="pmteam-bare-mention")
            return
        if refusal is None and not await self._within_limit(message):
            deps.metrics.inc("pmteam_intake_total", outcome="rate_limited")
            log.warning("rate limited", user=message.user_id, ts=message.message_ts)
            refusal = RATE_LIMITED_REPLY
        elif refusal is not None:
            deps.metrics.inc("pmteam_intake_total", outcome="refused")
        if refusal is not None:
            if await claim_reply(sessions=deps.sessions, message=message):
                deps.spawn(self._reply(message, refusal), name="pmteam-refusal")
            return
        await self._record(message)

    async def _within_limit(self, message: IntakeMessage) -> bool:
        """The per-person rate limit, shared by every replica: one short transaction before
        the ack. Each Slack message counts once, however often it is delivered."""
        if self.limit.unlimited:
            return True
        try:
            async with self.deps.sessions.begin() as session:
                return await allow_turn(
                    session=session,
                    user_id=message.user_id,
                    team_id=message.team_id,
                    channel_id=message.channel_id,
                    message_ts=message.message_ts,
                    limit=self.limit.limit,
                    window=self.limit.span,
                )
        except Exception as exc:
            if unstorable(exc) is None:
                raise  # a lock, a lost connection: Slack's retry may well succeed
            return True  # ids no database takes: `_record` drops the message, counted

    async def _record(self, message: IntakeMessage) -> None:
        deps = self.deps
        try:
            intake = await self.writer.submit(message)
        except Exception as exc:
            reason = unstorable(exc)
            if reason is None:
                raise  # a lock, a lost connection, shutdown: Slack's retry may well succeed
            # Its own values fail it: each of Slack's retries would fail the same way, so it
            # is acked and dropped, said in the log and the metrics (without the text).
            deps.metrics.inc("pmteam_intake_dropped_total", reason=reason)
            log.warning(
                "message dropped: it can't be stored",
                reason=reason,
                error=type(exc).__name__,
                source=message.source,
                channel=storable(message.channel_id).text,
                ts=storable(message.message_ts).text,
            )
            return
        if intake is None:
            deps.metrics.inc("pmteam_intake_total", outcome="ignored")
            return
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
