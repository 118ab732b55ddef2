"""What the use cases share: settings, the database, the Slack client, metrics, background work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Settings
from bot.runtime.metrics import Metrics
from bot.slack.client import BotIdentity
from bot.slack.members import Memberships
from bot.slack.reactions import SeenMarks
from storage.queries import Reader

log = structlog.get_logger("pmteam")

Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")

# Waits between tries of a write that met a lock timeout or a lost connection: about 15 s in
# all, on top of SQLite's own busy timeout per try.
DB_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)


def transient_db_error(exc: BaseException) -> bool:
    """A lock timeout or a dropped connection: another try may well work. A constraint or a
    data error would fail the same way again."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def retry_db(
    write: Callable[[], Awaitable[T]], *, what: str, delays: Sequence[float] = DB_RETRY_DELAYS
) -> T:
    """Run `write` (one whole transaction) again after a transient database error, with
    backoff and a bound; the last error is raised."""
    for delay in (*delays, None):
        try:
            return await write()
        except Exception as exc:
            if delay is None or not transient_db_error(exc):
                raise
            log.warning(
                "database write failed; trying again",
                what=what,
                error=type(exc).__name__,
                in_seconds=delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class Signals:
    """Button presses for work this process is waiting on, by id, so a press takes effect at
    once; work another replica runs sees the press in the database instead."""

    _waiting: dict[int, asyncio.Event] = field(default_factory=dict)

    def register(self, key: int) -> asyncio.Event:
        return self._waiting.setdefault(key, asyncio.Event())

    def signal(self, key: int) -> bool:
        event = self._waiting.get(key)
        if event is None:
            return False
        event.set()
        return True

    def discard(self, key: int) -> None:
        self._waiting.pop(key, None)


class StopSignals(Signals):
    """Stop presses for the turns this process is running, by turn id."""


class ToolDecisions(Signals):
    """Approve / Deny presses for the team tool calls this process waits on, by call id."""


@dataclass
class Deps:
    """Built whole by the composition root (`bot.app`); nothing is attached later."""

    settings: Settings
    sessions: Sessions
    client: AsyncWebClient
    identity: BotIdentity
    seen: SeenMarks
    metrics: Metrics = field(default_factory=Metrics)
    stops: StopSignals = field(default_factory=StopSignals)
    tool_decisions: ToolDecisions = field(default_factory=ToolDecisions)
    # This installation's id (storage `installation`), part of every post's key in Slack.
    installation: str = ""
    memberships: Memberships | None = None  # built from `client` when not given

    def __post_init__(self) -> None:
        if self.memberships is None:
            self.memberships = Memberships(self.client)

    async def reader(self, user_id: str) -> Reader:
        """Who `user_id` is for reading tasks: the channels they are in, and whether they read
        as a PM: named in PMTEAM_PM_USERS, or, when none are named, a member of the
        coordination channel (who sees the cards there anyway)."""
        assert self.memberships is not None
        channels = await self.memberships.channels_of(user_id)
        pm_users = self.settings.pm_users
        coordination = self.settings.coordination_channel
        is_pm = user_id in pm_users if pm_users else bool(coordination in channels)
        return Reader(user_id=user_id, is_pm=is_pm, channels=channels)

    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None:
        """Run work after the Slack ack without blocking it; failures are logged, not lost."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", task=task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
