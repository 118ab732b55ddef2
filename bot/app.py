"""The composition root: builds every piece from Settings and runs pmteam (HTTP or Socket Mode)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import listeners
from bot.config import Settings
from bot.runtime.http import build_http_app
from bot.runtime.scheduler import JobScheduler, start_scheduler
from bot.runtime.worker import Worker
from bot.services.deps import BotIdentity, Deps
from storage.db import create_engine, session_factory
from storage.migrate import upgrade

log = structlog.get_logger("pmteam")

SWITCH_INTERVAL = 0.0005  # seconds


def build_slack_client(
    settings: Settings, token: str | None = None, *, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """A Web API client that retries Slack's 429s (honouring Retry-After), 5xx and resets.

    Pass a long-lived `session` in a long-running process: without one, slack_sdk opens a new
    HTTP session (and connection) for every call."""
    bot_token = token or (
        settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    )
    return AsyncWebClient(
        token=bot_token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


async def fetch_identity(client: AsyncWebClient) -> BotIdentity:
    response = await client.auth_test()
    scopes = response.headers.get("x-oauth-scopes", "") if response.headers else ""
    return BotIdentity(
        team_id=str(response["team_id"]),
        bot_user_id=str(response["user_id"]),
        bot_id=str(response.get("bot_id") or ""),
        scopes=frozenset(s.strip() for s in scopes.split(",") if s.strip()),
    )


def build_bolt_app(deps: Deps) -> AsyncApp:
    settings = deps.settings
    identity = deps.identity
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""

    # Bolt's default single-workspace authorisation calls auth.test on the first event; ours
    # answers from the identity fetched at start, so no Web API call sits on the ack path.
    async def authorize(**_kwargs: object) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id=identity.team_id,
            bot_token=token,
            bot_id=identity.bot_id,
            bot_user_id=identity.bot_user_id,
        )

    http_mode = settings.mode == "http"
    app = AsyncApp(
        client=deps.client,
        authorize=authorize,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        request_verification_enabled=http_mode,
        # Commit first, then ack: the listener finishes before Slack gets its response.
        process_before_response=True,
        logger=logging.getLogger("slack_bolt"),
    )
    listeners.register(app, deps)
    return app


@dataclass
class Pmteam:
    """A running pmteam: the pieces `serve` starts and stops, also used by the tests."""

    settings: Settings
    engine: AsyncEngine
    deps: Deps
    bolt: AsyncApp
    worker: Worker
    http_runner: web.AppRunner | None = None
    socket_handler: object | None = None
    http_port: int | None = None
    scheduler: JobScheduler | None = None

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # reported, not raised: readiness is a status page
            checks["database"] = f"fail: {exc.__class__.__name__}"
        try:
            await self.deps.client.auth_test()
            checks["slack"] = "ok"
        except Exception as exc:
            checks["slack"] = f"fail: {exc.__class__.__name__}"
        return checks


async def start(settings: Settings, *, migrate: bool = True, scheduler: bool = False) -> Pmteam:
    """Build and start everything; `stop` undoes it. Fails fast with a readable error.

    `scheduler=True` (what `pmteam run` does) also runs the standups and housekeeping jobs,
    and the scheduler's minutely `lease-sweeper` job replaces the worker's own sweep loop.
    Tests leave it off unless they are about the schedule.
    """
    from bot.services.turns import build_worker

    if migrate:
        await asyncio.to_thread(upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    http_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    client = build_slack_client(settings, session=http_session)
    try:
        identity = await fetch_identity(client)
    except BaseException:
        await http_session.close()
        raise
    deps = Deps(settings=settings, sessions=sessions, client=client, identity=identity)
    worker = build_worker(deps)
    if scheduler:
        worker.sweep_interval = None  # the scheduler's lease-sweeper job takes over
    deps.wake_worker = worker.wake
    bolt = build_bolt_app(deps)
    pmteam = Pmteam(settings=settings, engine=engine, deps=deps, bolt=bolt, worker=worker)

    http_app = build_http_app(
        bolt=bolt if settings.mode == "http" else None,
        metrics=deps.metrics,
        readiness=pmteam.readiness,
    )
    runner = web.AppRunner(http_app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    pmteam.http_runner = runner
    pmteam.http_port = int(runner.addresses[0][1]) if runner.addresses else settings.port

    await worker.start()
    if settings.mode == "socket":
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        assert settings.slack_app_token is not None
        handler = AsyncSocketModeHandler(
            bolt, settings.slack_app_token.get_secret_value(), web_client=client
        )
        await handler.connect_async()  # type: ignore[no-untyped-call]
        pmteam.socket_handler = handler
    if scheduler:
        # After Slack is connected (or the HTTP server is up): a catch-up standup at start
        # must be able to post.
        pmteam.scheduler = await start_scheduler(deps, sweep=worker.sweep)
    log.info(
        "pmteam started",
        mode=settings.mode,
        team=identity.team_id,
        bot_user=identity.bot_user_id,
        http=f"http://{settings.host}:{pmteam.http_port}",
        workers=settings.max_concurrent_tasks,
    )
    return pmteam


async def stop(pmteam: Pmteam) -> None:
    if pmteam.scheduler is not None:
        await pmteam.scheduler.stop()
    # Take no more events first: requests already in flight finish their commit and ack,
    # later ones fail to connect and Slack delivers them again (to another replica).
    if pmteam.socket_handler is not None:
        with contextlib.suppress(Exception):
            await pmteam.socket_handler.close_async()  # type: ignore[attr-defined]
    if pmteam.http_runner is not None:
        await pmteam.http_runner.cleanup()
    await pmteam.worker.stop()
    await pmteam.deps.seen.close()
    await pmteam.deps.drain()
    await pmteam.deps.intake_writer.close()
    await pmteam.engine.dispose()
    if pmteam.deps.client.session is not None:
        await pmteam.deps.client.session.close()
    log.info("pmteam stopped")


async def serve(settings: Settings) -> None:
    """`pmteam run`: start, then stop cleanly on SIGTERM or Ctrl-C."""
    pmteam = await start(settings, scheduler=True)
    # What start built lives as long as the process: take it out of the cyclic collector's
    # view, so full collections (tens of ms over ~250k objects) don't stall requests.
    gc.collect()
    gc.freeze()
    # The intake writer's thread and the event loop share the GIL. A thread that wants it
    # back waits up to the switch interval (5 ms by default) before it may ask the holder to
    # let go; an ack waiting on a commit would wait that long too.
    sys.setswitchinterval(SWITCH_INTERVAL)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down: no new turns are claimed; running turns get a grace period")
    await stop(pmteam)
