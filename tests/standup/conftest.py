"""Standup fixtures: a Deps on a real database and the sandbox fakes, and a settable clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import build_models, build_standup_runner
from bot.services.deps import Deps
from bot.services.standups import StandupRunner
from bot.slack.client import build_slack_client, fetch_identity
from bot.slack.reactions import SeenMarks
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.db import create_engine, session_factory
from tests.e2e.conftest import e2e_settings

COORDINATION = "C0PM"
ENGINEERING = "C0ENG"


class Clock:
    """The time the code under test sees; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@contextlib.asynccontextmanager
async def open_runtime(
    *, database_url: str, fake_slack: FakeSlack, fake_model: FakeModel, **overrides: Any
) -> AsyncIterator[Deps]:
    """What `bot.app.start` builds for the standup code, with its own engine."""
    settings = e2e_settings(
        database_url=database_url, fake_slack=fake_slack, fake_model=fake_model, **overrides
    )
    engine = create_engine(settings.database_url)
    try:
        client = build_slack_client(settings)
        yield Deps(
            settings=settings,
            sessions=session_factory(engine),
            client=client,
            identity=await fetch_identity(client),
            seen=SeenMarks(client),
        )
    finally:
        await engine.dispose()


OpenRunner = Callable[..., contextlib.AbstractAsyncContextManager[StandupRunner]]


@pytest.fixture
def open_runner(sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel) -> OpenRunner:
    """`async with open_runner(clock, **settings) as runner`: a StandupRunner (SQLite unless
    `database_url=` is given) whose model is the fake and whose clock is `clock`."""

    @contextlib.asynccontextmanager
    async def _open(
        clock: Clock, *, owner: str | None = None, **overrides: Any
    ) -> AsyncIterator[StandupRunner]:
        database_url = overrides.pop("database_url", sqlite_url)
        async with open_runtime(
            database_url=database_url, fake_slack=fake_slack, fake_model=fake_model, **overrides
        ) as deps:
            models = build_models(deps.settings, deps)
            try:
                yield build_standup_runner(deps, models, clock=clock, owner=owner)
            finally:
                await models.close()

    return _open
