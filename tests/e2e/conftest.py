"""The real pmteam app, started in-process against the sandbox fakes over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlmodel import SQLModel, select

from bot.app import Pmteam, start, stop
from bot.config import Settings
from bot.slack.contract import BOT_EVENTS
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from sandbox.slack.delivery import Delivery
from sandbox.slack.server import PostResult
from sandbox.slack.workspace import Message
from storage.models import Turn, TurnStatus
from tests.conftest import _truncate_postgres

BOT_TOKEN = "xoxb-1-2-e2e"
SIGNING_SECRET = "sandbox-secret"
ENGINEERING = "C0ENG"
COORDINATION = "C0PM"
ALICE = "U0ALICE"
BOB = "U0BOB"
BOT_USER = "U0PMTEAM"

StartPmteam = Callable[..., Awaitable[Pmteam]]
M = TypeVar("M", bound=SQLModel)


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

    # The events manifest.yml subscribes to, as a real install would get them.
    fake_slack.subscriptions = set(BOT_EVENTS)

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
async def pmteam(start_pmteam: StartPmteam, request: pytest.FixtureRequest) -> Pmteam:
    """pmteam on SQLite; `ON_EACH_DATABASE` runs a test on PostgreSQL as well."""
    if getattr(request, "param", "sqlite") == "postgres":
        url: str = request.getfixturevalue("postgres_database")
        _truncate_postgres(url)
        return await start_pmteam(database_url=url)
    return await start_pmteam()


ON_EACH_DATABASE = pytest.mark.parametrize("pmteam", ["sqlite", "postgres"], indirect=True)


# --- helpers shared by the end-to-end tests ------------------------------------------------

FINISHED_TURN = frozenset({TurnStatus.DONE, TurnStatus.FAILED})
# Slack's special mentions in their raw, pinging forms.
RAW_SPECIAL_MENTIONS = (
    "<!channel",
    "<!here",
    "<!everyone",
    "<!subteam",
    "@channel",
    "@here",
    "@everyone",
)


def mention_text(text: str) -> str:
    return f"<@{BOT_USER}> {text}"


async def mention(
    fake_slack: FakeSlack,
    text: str,
    *,
    user: str = ALICE,
    channel: str = ENGINEERING,
    thread_ts: str | None = None,
) -> PostResult:
    """A person mentions pmteam; returns once Slack has delivered (and the app acked) it."""
    return await fake_slack.post_as_user(user, channel, mention_text(text), thread_ts=thread_ts)


async def rows(pmteam: Pmteam, model: type[M]) -> list[M]:
    async with pmteam.deps.sessions() as session:
        return list((await session.exec(select(model).order_by(model.id))).all())  # type: ignore[attr-defined]


async def wait_until_idle(
    pmteam: Pmteam, fake_slack: FakeSlack, *, turns: int, timeout: float = 15.0
) -> list[Turn]:
    """Wait until `turns` turns exist and all have finished (done or failed), the worker is
    idle, and the after-ack work and the events our own posts set off have been delivered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await rows(pmteam, Turn)
        finished = all(t.status in FINISHED_TURN for t in found)
        if len(found) >= turns and finished and pmteam.worker.busy == 0:
            break
        if loop.time() >= deadline:
            states = [(t.id, t.status) for t in found]
            raise TimeoutError(f"turns not finished after {timeout}s: {states}")
        await asyncio.sleep(0.02)
    await pmteam.deps.drain()
    await fake_slack.drain()
    return found


def app_mention_delivery(posted: PostResult) -> Delivery:
    """The `app_mention` delivery of a mention (it also arrives as a channel `message`)."""
    [delivery] = [d for d in posted.deliveries if d.type == "app_mention"]
    return delivery


def bot_messages(
    fake_slack: FakeSlack, channel: str, thread_ts: str | None = None
) -> list[Message]:
    """What pmteam posted in a channel (or in one thread of it)."""
    bot = fake_slack.workspace.bot_user.id
    messages = (
        fake_slack.workspace.thread(channel, thread_ts)
        if thread_ts
        else fake_slack.workspace.messages(channel, include_replies=True)
    )
    return [m for m in messages if m.user == bot and m.subtype != "assistant_app_thread"]


def post_key_of(message: Message) -> str | None:
    payload = (message.metadata or {}).get("event_payload") or {}
    key = payload.get("key")
    return str(key) if key is not None else None


def report_json(**overrides: Any) -> dict[str, Any]:
    """A completion report that passes `CompletionReport` validation (every score ≥ 6)."""
    report: dict[str, Any] = {
        "turn_kind": "backend_work",
        "task": "Design an idempotent payments API",
        "status": "COMPLETED",
        "pm_scores": {
            "system_architecture_design": 8,
            "scalability_performance": 7,
            "integration_reliability": 8,
        },
        "self_assessment": {
            "probability_of_success": 8,
            "implementation_feasibility": 8,
            "quality_completeness": 7,
            "risk_assessment": 7,
            "alignment_value": 9,
        },
        "red_flags": [],
        "confidence_notes": "The design follows well-known patterns.",
        "key_deliverables": [{"kind": "system", "description": "Payments API design"}],
        "dependencies_handoffs": [],
        "estimated_time": None,
    }
    report.update(overrides)
    return report
