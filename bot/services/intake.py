"""Intake: a Slack message addressed to pmteam becomes a durable queued turn, in milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import checkpoint_wal, create_blocking_engine
from storage.intake import IntakeMessage, IntakeRecord, commit_intakes
from storage.records import claim_dedupe_key

log = structlog.get_logger("pmteam")

# Messages pmteam never acts on: edits, deletions, joins, topic changes, bot posts, and so on.
# A file share with text is still a request; one without text is skipped below.
_ACTIONABLE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


@dataclass(frozen=True)
class IncomingMessage:
    team_id: str
    channel_id: str
    user_id: str
    text: str
    ts: str
    thread_ts: str  # the thread the task lives in (the message's own ts when top-level)
    source: str  # mention | dm | assistant


def strip_bot_mention(text: str, bot_user_id: str) -> str:
    cleaned = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()


def _team_of(body: dict[str, Any], event: dict[str, Any]) -> str:
    return str(event.get("team") or body.get("team_id") or "")


def parse_mention(body: dict[str, Any], bot_user_id: str) -> IncomingMessage | None:
    event = body.get("event") or {}
    if event.get("bot_id") or event.get("subtype") or not event.get("user"):
        return None
    text = strip_bot_mention(str(event.get("text") or ""), bot_user_id)
    if not text:
        return None
    ts = str(event["ts"])
    return IncomingMessage(
        team_id=_team_of(body, event),
        channel_id=str(event["channel"]),
        user_id=str(event["user"]),
        text=text,
        ts=ts,
        thread_ts=str(event.get("thread_ts") or ts),
        source="mention",
    )


def parse_direct_message(body: dict[str, Any], bot_user_id: str) -> IncomingMessage | None:
    """A person's message in a DM or assistant thread with pmteam; None for everything to ignore."""
    event = body.get("event") or {}
    if event.get("channel_type") != "im":
        return None  # channel messages reach pmteam as app_mention
    if event.get("subtype") not in _ACTIONABLE_SUBTYPES:
        return None
    if event.get("bot_id") or event.get("app_id") or not event.get("user"):
        return None
    if event.get("user") == bot_user_id:
        return None
    text = strip_bot_mention(str(event.get("text") or ""), bot_user_id)
    if not text:
        return None  # a file shared with no words: nothing to work on
    ts = str(event["ts"])
    thread_ts = event.get("thread_ts")
    return IncomingMessage(
        team_id=_team_of(body, event),
        channel_id=str(event["channel"]),
        user_id=str(event["user"]),
        text=text,
        ts=ts,
        thread_ts=str(thread_ts or ts),
        source="assistant" if thread_ts else "dm",
    )


class RateLimiter:
    """At most `limit` new turns per person per `window` seconds (per process)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[tuple[float, str]]] = {}

    def allow(self, key: str, message: str = "", now: float | None = None) -> bool:
        """`message` (the Slack ts) makes Slack's retries and the app_mention + message double
        delivery of one message count once."""
        if self.limit <= 0:
            return True
        now = time.monotonic() if now is None else now
        recent = self._seen.setdefault(key, deque())
        while recent and now - recent[0][0] >= self.window:
            recent.popleft()
        if message and any(seen == message for _, seen in recent):
            return True
        if len(recent) >= self.limit:
            return False
        recent.append((now, message))
        return True


@dataclass(frozen=True)
class Refusal:
    text: str


def check_access(
    message: IncomingMessage,
    *,
    allowed_channels: list[str],
    allowed_users: list[str],
) -> Refusal | None:
    if allowed_users and message.user_id not in allowed_users:
        return Refusal(
            "Sorry, I only take tasks from the people my operators have allowed. "
            "Ask whoever runs pmteam to add you to PMTEAM_ALLOWED_USERS."
        )
    if (
        allowed_channels
        and message.source == "mention"
        and message.channel_id not in (allowed_channels)
    ):
        return Refusal(
            "Sorry, I don't take tasks in this channel. Ask whoever runs pmteam to add it to "
            "PMTEAM_ALLOWED_CHANNELS, or message me directly."
        )
    return None


def _as_intake_message(message: IncomingMessage) -> IntakeMessage:
    return IntakeMessage(
        team_id=message.team_id,
        channel_id=message.channel_id,
        thread_ts=message.thread_ts,
        message_ts=message.ts,
        user_id=message.user_id,
        text=message.text,
        source=message.source,
    )


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

    async def submit(self, message: IncomingMessage) -> IntakeRecord:
        if self._closing:
            # Bolt answers 500 and Slack delivers the event again later, to a running pmteam.
            raise WriterClosed("pmteam is shutting down; the event was not recorded")
        future: asyncio.Future[IntakeRecord] = asyncio.get_running_loop().create_future()
        self._pending.append((_as_intake_message(message), future))
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
    *, sessions: async_sessionmaker[AsyncSession], message: IncomingMessage
) -> bool:
    """True the first time pmteam answers this message without taking it (a refusal), False
    for Slack's retries of it: they are acknowledged, not answered again."""
    key = f"reply:{message.team_id}:{message.channel_id}:{message.ts}"
    async with sessions() as session:
        return await claim_dedupe_key(session=session, key=key)
