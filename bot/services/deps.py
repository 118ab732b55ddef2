"""What the listeners and the worker share: settings, clients, the DB, and background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Settings
from bot.runtime.metrics import Metrics
from bot.services.intake import IntakeWriter, RateLimiter
from bot.slack.reactions import SeenMarks

log = structlog.get_logger("pmteam")


@dataclass(frozen=True)
class BotIdentity:
    team_id: str
    bot_user_id: str
    bot_id: str
    scopes: frozenset[str] = frozenset()


@dataclass
class Deps:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    client: AsyncWebClient
    identity: BotIdentity
    metrics: Metrics = field(default_factory=Metrics)
    rate_limiter: RateLimiter = field(init=False)
    intake_writer: IntakeWriter = field(init=False)
    seen: SeenMarks = field(init=False)
    wake_worker: Any = None  # set by the composition root once the worker exists
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(limit=self.settings.rate_limit_per_user, window=600)
        self.intake_writer = IntakeWriter(self.settings.database_url)
        self.seen = SeenMarks(self.client)

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
