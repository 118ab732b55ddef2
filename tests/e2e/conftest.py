"""The real pmteam app, started in-process against the sandbox fakes over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.app import Pmteam, start, stop
from bot.config import Settings
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack

BOT_TOKEN = "xoxb-1-2-e2e"
SIGNING_SECRET = "sandbox-secret"
ENGINEERING = "C0ENG"
COORDINATION = "C0PM"
ALICE = "U0ALICE"
BOB = "U0BOB"
BOT_USER = "U0PMTEAM"

StartPmteam = Callable[..., Awaitable[Pmteam]]


def e2e_settings(
    *, database_url: str, fake_slack: FakeSlack, fake_model: FakeModel, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PMTEAM_MODE": "http",
        "PMTEAM_HOST": "127.0.0.1",
        "PMTEAM_PORT": 0,
        "PMTEAM_SLACK_API_URL": fake_slack.api_url,
        "PMTEAM_DATABASE_URL": database_url,
        "PMTEAM_COORDINATION_CHANNEL": COORDINATION,
        "ANTHROPIC_API_KEY": "sk-ant-e2e-test",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
        "PMTEAM_LEASE_SECONDS": 30,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def start_pmteam(
    sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> AsyncIterator[StartPmteam]:
    """Start pmteam (HTTP mode by default) wired to the fakes; stopped after the test."""
    started: list[Pmteam] = []

    async def _start(**overrides: Any) -> Pmteam:
        settings = e2e_settings(
            database_url=overrides.pop("database_url", sqlite_url),
            fake_slack=fake_slack,
            fake_model=fake_model,
            **overrides,
        )
        app = await start(settings, migrate=False)
        started.append(app)
        if settings.mode == "http":
            fake_slack.set_event_target(f"http://127.0.0.1:{app.http_port}/slack/events")
        return app

    yield _start
    for app in started:
        await stop(app)


@pytest.fixture
async def pmteam(start_pmteam: StartPmteam) -> Pmteam:
    return await start_pmteam()
