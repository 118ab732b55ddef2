"""What the use cases share: settings, the database, the Slack client, metrics, background work."""

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
from bot.slack.client import BotIdentity
from bot.slack.reactions import SeenMarks

log = structlog.get_logger("pmteam")

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class StopSignals:
    """Stop presses for the turns this process is running, so a Stop takes effect at once;
    a turn another replica runs sees the press in the database instead."""

    _running: dict[int, asyncio.Event] = field(default_factory=dict)

    def register(self, turn_id: int) -> asyncio.Event:
        return self._running.setdefault(turn_id, asyncio.Event())

    def signal(self, turn_id: int) -> bool:
        event = self._running.get(turn_id)
        if event is None:
            return False
        event.set()
        return True

    def discard(self, turn_id: int) -> None:
        self._running.pop(turn_id, None)


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
