"""`pmteam sandbox`: the fake Slack with its web page, the offline model and pmteam, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import structlog

from bot.app import Pmteam, start, stop
from bot.config import Settings, load_settings
from bot.slack.contract import BOT_EVENTS
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from sandbox.web import ModelNote, SandboxPage, attach_page

log = structlog.get_logger("pmteam.sandbox")

DATABASE_FILE = "pmteam-sandbox.db"
BOT_TOKEN = "xoxb-sandbox-pmteam"
APP_TOKEN = "xapp-1-A0PMTEAM-1-sandbox"
SIGNING_SECRET = "sandbox-signing-secret"
OFFLINE_API_KEY = "sk-ant-sandbox-offline-model"
COORDINATION_CHANNEL_NAME = "pm-coordination"
# Seconds between the offline model's SSE events: slow enough to watch an answer stream in.
STREAM_DELAY = 0.025
OFFLINE_NOTE = (
    "Offline demo model: answers are templates, not Claude. "
    "Set ANTHROPIC_API_KEY and restart for real ones."
)
CLAUDE_NOTE = "Answers come from Claude (ANTHROPIC_API_KEY is set)."


@dataclass
class Sandbox:
    """A running sandbox: the fake Slack (serving the page), the model if offline, and pmteam."""

    slack: FakeSlack
    page: SandboxPage
    model: FakeModel | None
    pmteam: Pmteam

    @property
    def url(self) -> str:
        return self.slack.url + "/"

    @property
    def offline(self) -> bool:
        return self.model is not None


def sandbox_settings(
    *,
    slack: FakeSlack,
    database_url: str,
    socket_mode: bool,
    model: FakeModel | None,
    anthropic_api_key: str | None,
) -> Settings:
    """pmteam's settings for the sandbox; nothing is read from `.env`, and nothing is needed."""
    coordination = slack.workspace.find_channel(COORDINATION_CHANNEL_NAME)
    assert coordination is not None, "the sandbox workspace is seeded with #pm-coordination"
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PMTEAM_MODE": "socket" if socket_mode else "http",
        "PMTEAM_HOST": "127.0.0.1",
        "PMTEAM_PORT": 0,
        "PMTEAM_SLACK_API_URL": slack.api_url,
        "PMTEAM_DATABASE_URL": database_url,
        "PMTEAM_COORDINATION_CHANNEL": coordination.id,
        # Access lists from the environment name real channels and people, not these.
        "PMTEAM_ALLOWED_CHANNELS": "",
        "PMTEAM_ALLOWED_USERS": "",
        "PMTEAM_PM_USERS": "",
    }
    if socket_mode:
        values["SLACK_APP_TOKEN"] = APP_TOKEN
    if model is not None:
        values["ANTHROPIC_API_KEY"] = OFFLINE_API_KEY
        values["ANTHROPIC_BASE_URL"] = model.base_url
    else:
        values["ANTHROPIC_API_KEY"] = anthropic_api_key
    return load_settings(_env_file=None, **values)


async def start_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    socket_mode: bool = False,
    database_url: str = f"sqlite+aiosqlite:///./{DATABASE_FILE}",
    anthropic_api_key: str | None = None,
    stream_delay: float = STREAM_DELAY,
    migrate: bool = True,
) -> Sandbox:
    """Start the fakes and pmteam wired to them; `stop_sandbox` undoes it (also on failure)."""
    model = None if anthropic_api_key else FakeModel(stream_delay=stream_delay)
    note = ModelNote(offline=True, text=OFFLINE_NOTE) if model else ModelNote(False, CLAUDE_NOTE)
    slack = FakeSlack(
        signing_secret=SIGNING_SECRET,
        token=BOT_TOKEN,
        app_token=APP_TOKEN,
        subscriptions=BOT_EVENTS,  # what manifest.yml subscribes to, as a real install would
    )
    page = attach_page(slack, model=note)
    await slack.start(host=host, port=port)
    try:
        if model is not None:
            await model.start("127.0.0.1", 0)
        settings = sandbox_settings(
            slack=slack,
            database_url=database_url,
            socket_mode=socket_mode,
            model=model,
            anthropic_api_key=anthropic_api_key,
        )
        pmteam = await start(settings, migrate=migrate)
    except BaseException:
        if model is not None:
            await model.stop()
        await slack.stop()
        raise
    if not socket_mode:
        slack.set_event_target(f"http://127.0.0.1:{pmteam.http_port}/slack/events")
    return Sandbox(slack=slack, page=page, model=model, pmteam=pmteam)


async def stop_sandbox(sandbox: Sandbox) -> None:
    # pmteam first: its last posts still reach the fake Slack.
    await stop(sandbox.pmteam)
    await sandbox.slack.drain()
    await sandbox.slack.stop()
    if sandbox.model is not None:
        await sandbox.model.stop()


def welcome(sandbox: Sandbox, *, socket_mode: bool, database: str, reused: bool = False) -> str:
    """What `pmteam sandbox` prints once everything is up."""
    model = (
        "the offline demo model (set ANTHROPIC_API_KEY for Claude)"
        if sandbox.offline
        else "Claude, with your ANTHROPIC_API_KEY"
    )
    transport = "Socket Mode" if socket_mode else "signed HTTP events"
    return (
        f"\npmteam sandbox is running: open {sandbox.url}\n\n"
        "  Try it: the welcome card in #engineering has three requests to ask pmteam (one\n"
        "  ends completed, one in progress, one blocked) and the next steps: a follow-up in\n"
        "  the thread, the PM cards and their buttons in #pm-coordination, /pm status and\n"
        "  /pm standup, pmteam's Home tab, and the Assistant pane (top bar). Switch between\n"
        "  Alice and Bob at the top right.\n\n"
        f"  Model: {model}. Events: {transport}. Database: {database}\n"
        + (
            "  Tasks from earlier runs are still in the database, but their Slack messages are\n"
            "  gone (the workspace lives in memory); --reset starts over.\n"
            if reused
            else ""
        )
        + "  Press Ctrl-C to stop.\n\n"
    )


async def run_sandbox(
    *,
    port: int,
    socket_mode: bool,
    anthropic_api_key: str | None = None,
    reset: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    """`pmteam sandbox`: start, print the URL, and stop everything cleanly on Ctrl-C."""
    database = Path(DATABASE_FILE)
    if reset:
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
    reused = database.exists()
    sandbox = await start_sandbox(
        port=port, socket_mode=socket_mode, anthropic_api_key=anthropic_api_key
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    try:
        out.write(
            welcome(sandbox, socket_mode=socket_mode, database=f"./{DATABASE_FILE}", reused=reused)
        )
        out.flush()
        await stopping.wait()
    finally:
        out.write("\nstopping the sandbox…\n")
        out.flush()
        await stop_sandbox(sandbox)
        out.write("sandbox stopped\n")
        out.flush()
