"""The composition root: builds every piece from Settings and runs pmteam (HTTP or Socket Mode)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

import aiohttp
import structlog
from aiohttp import web
from anthropic import AsyncAnthropic
from apscheduler.triggers.interval import IntervalTrigger
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.config import AgentSettings
from agents.ledger import StorageLedger
from agents.llm import ModelClient
from bot.config import Settings
from bot.core.fence import ensure_held
from bot.core.rate_limit import RateLimit
from bot.listeners import build_bolt_app
from bot.runtime.coalesce import Coalesced
from bot.runtime.http import build_http_app
from bot.runtime.mcp import McpServers
from bot.runtime.scheduler import Job, JobScheduler
from bot.runtime.worker import Worker, worker_identity
from bot.services.deps import Deps, Sessions
from bot.services.home import refresh_homes
from bot.services.housekeeping import Housekeeping
from bot.services.intake import Intake, IntakeWriter
from bot.services.queue import TurnQueue
from bot.services.standups import StandupRunner
from bot.services.turns import TurnPipeline
from bot.slack.client import build_slack_client, fetch_identity
from bot.slack.posting import Poster
from bot.slack.reactions import SeenMarks
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Turn
from storage.records import installation_id
from storage.types import utcnow

log = structlog.get_logger("pmteam")

SLACK_READY_FOR = 30.0  # seconds a successful auth.test answers /readyz
SLACK_RETRY_AFTER = 5.0  # seconds a failed one does
SOCKET_CHECK_EVERY = 1.0  # seconds between looks at the Socket Mode connection
SOCKET_GRACE = 3.0  # seconds the SDK gets to reconnect on its own before pmteam does
SOCKET_BACKOFF_MAX = 30.0  # seconds between pmteam's reconnect tries, at most
SOCKET_DOWN_LIMIT = 120.0  # seconds disconnected before /healthz fails (and the pod restarts)
RATE_LIMIT_WINDOW = 600.0  # seconds: PMTEAM_RATE_LIMIT_PER_USER counts new turns per 10 min

JOB_LEASE_SWEEPER = "lease-sweeper"
JOB_STANDUP_CHECK = "standup-check"
JOB_NUDGES = "task-nudges"
JOB_UNPOSTED_REPORTS = "unposted-reports"
JOB_RETENTION = "retention"
JOB_DEDUPE_KEYS = "dedupe-keys"
JOB_TASK_COUNTS = "task-counts"


def standup_job_id(channel_id: str) -> str:
    return f"standup:{channel_id}"


def sweep_period(settings: Settings) -> float:
    """How often expired leases are looked for: a third of the lease, 1 to 60 s."""
    return min(max(settings.lease_seconds / 3, 1.0), 60.0)


# --- the model side ----------------------------------------------------------------------------


def agent_settings_for(settings: Settings) -> AgentSettings:
    return AgentSettings(
        engineer_model=settings.engineer_model,
        researcher_model=settings.researcher_model,
        report_model=settings.report_model or None,
        engineer_prompt_file=settings.engineer_prompt_file,
        research_web=settings.research_web,
        stream_stall_s=settings.stream_stall_seconds,
    )


@dataclass
class Models:
    """The one Anthropic client of a process, and what the agents call it through."""

    anthropic: AsyncAnthropic
    client: ModelClient
    agent_settings: AgentSettings
    ledger: StorageLedger

    async def close(self) -> None:
        await self.anthropic.close()


def build_models(settings: Settings, deps: Deps) -> Models:
    agent_settings = agent_settings_for(settings)
    anthropic = AsyncAnthropic(
        api_key=(
            settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        ),
        base_url=settings.anthropic_base_url,
    )
    ledger = StorageLedger(deps.sessions)
    client = ModelClient.from_settings(
        anthropic,
        agent_settings,
        usage_sink=deps.metrics.metered(ledger),
        # A turn whose lease ran out (a paused or cut-off replica) calls the model no more.
        before_call=ensure_held,
    )
    return Models(anthropic=anthropic, client=client, agent_settings=agent_settings, ledger=ledger)


def build_standup_runner(
    deps: Deps,
    models: Models,
    *,
    clock: Callable[[], datetime] = utcnow,
    owner: str | None = None,
) -> StandupRunner:
    return StandupRunner(
        deps=deps,
        model=models.client,
        agent_settings=models.agent_settings,
        clock=clock,
        owner=owner or worker_identity(),
    )


# --- the shared pieces ---------------------------------------------------------------------


async def load_installation(sessions: Sessions) -> str:
    """This installation's id, made at its first start (see docs/architecture.md, "Keys")."""
    async with sessions.begin() as session:
        return await installation_id(session=session)


@contextlib.asynccontextmanager
async def open_deps(settings: Settings) -> AsyncIterator[Deps]:
    """The database, the Slack client (one HTTP session) and who pmteam is; closed on exit."""
    engine = create_engine(settings.database_url)
    http_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        client = build_slack_client(settings, session=http_session)
        sessions = session_factory(engine)
        deps = Deps(
            settings=settings,
            sessions=sessions,
            installation=await load_installation(sessions),
            client=client,
            identity=await fetch_identity(client),
            seen=SeenMarks(client),
        )
        try:
            yield deps
        finally:
            await deps.seen.close()
            await deps.drain()
    finally:
        await http_session.close()
        await engine.dispose()


@contextlib.asynccontextmanager
async def open_standup_runner(settings: Settings) -> AsyncIterator[StandupRunner]:
    """A StandupRunner with everything it needs, for `pmteam standup`."""
    async with open_deps(settings) as deps:
        models = build_models(settings, deps)
        try:
            yield build_standup_runner(deps, models)
        finally:
            await models.close()


def build_scheduler(
    deps: Deps,
    *,
    standups: StandupRunner,
    housekeeping: Housekeeping,
    sweep: Job | None,
) -> JobScheduler:
    """Every periodic job of pmteam, on one scheduler in PMTEAM_TIMEZONE.

    - `standup:<channel>`: each standup on its crontab.
    - `standup-check` (every minute, and once at start): catch-up of a standup missed while
      the process was down, and recovery of one whose claim was left by a crashed process.
    - `lease-sweeper` (every minute): turns whose lease expired go back to the queue. The
      worker sweeps once when it starts; from then on this job is the one sweeper.
    - `task-counts` (every minute): the rows the task counts are summed from, folded.
    - `task-nudges` (every 5 minutes), `retention` and `dedupe-keys` (hourly).
    """
    settings = deps.settings
    timezone = ZoneInfo(settings.timezone)
    jobs = JobScheduler(timezone=timezone)
    grace_s = max(settings.standup_grace_minutes * 60, 60)
    for schedule in standups.schedules:
        jobs.add(
            standup_job_id(schedule.channel_id),
            _bind(standups.run_channel, schedule.channel_id),
            schedule.trigger,
            misfire_grace_time=grace_s,
        )
    if standups.schedules:
        jobs.add(
            JOB_STANDUP_CHECK,
            standups.run_due,
            IntervalTrigger(minutes=1, timezone=timezone),
            next_run_time=datetime.now(timezone),
        )
    if sweep is not None:
        # Takeover within the lease and a third of it: an expired lease is found that soon.
        jobs.add(
            JOB_LEASE_SWEEPER,
            sweep,
            IntervalTrigger(seconds=sweep_period(settings), timezone=timezone),
        )
    jobs.add(JOB_NUDGES, housekeeping.nudge_overdue_tasks, IntervalTrigger(minutes=5))
    jobs.add(JOB_UNPOSTED_REPORTS, housekeeping.post_unposted_reports, IntervalTrigger(minutes=1))
    jobs.add(JOB_TASK_COUNTS, housekeeping.compact_task_counts, IntervalTrigger(minutes=1))
    jobs.add(
        JOB_DEDUPE_KEYS,
        housekeeping.drop_old_dedupe_keys,
        IntervalTrigger(hours=1, timezone=timezone),
        misfire_grace_time=3600,
    )
    if settings.retention_days > 0:
        jobs.add(
            JOB_RETENTION,
            housekeeping.purge_old_text,
            IntervalTrigger(hours=1, timezone=timezone),
            misfire_grace_time=3600,
        )
    return jobs


def _bind(run: Callable[[str], Awaitable[object]], channel_id: str) -> Job:
    async def job() -> object:
        return await run(channel_id)

    return job


# --- a running pmteam ------------------------------------------------------------------------


@dataclass
class Pmteam:
    """A running pmteam: the pieces `serve` starts and stops, also used by the tests."""

    settings: Settings
    engine: AsyncEngine
    deps: Deps
    models: Models
    intake: Intake
    standups: StandupRunner
    bolt: AsyncApp
    queue: TurnQueue
    worker: Worker[Turn]
    team_servers: McpServers
    http_runner: web.AppRunner | None = None
    socket_handler: AsyncSocketModeHandler | None = None
    http_port: int | None = None
    scheduler: JobScheduler | None = None
    socket_down_limit: float = SOCKET_DOWN_LIMIT
    socket_down_since: float | None = None
    _socket_watch: asyncio.Task[None] | None = None
    _slack_checked_at: float = float("-inf")
    _slack_check: str = "ok"
    _slack_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # reported, not raised: readiness is a status page
            checks["database"] = f"fail: {exc.__class__.__name__}"
        checks["slack"] = await self._slack_readiness()
        return checks

    async def _slack_readiness(self) -> str:
        """Slack's answer to auth.test, asked at most once per period however many probes
        come (anyone who can reach /readyz could otherwise spend the rate limit): a success
        is trusted for SLACK_READY_FOR, a failure for SLACK_RETRY_AFTER."""
        async with self._slack_lock:
            trusted = SLACK_READY_FOR if self._slack_check == "ok" else SLACK_RETRY_AFTER
            if time.monotonic() - self._slack_checked_at <= trusted:
                return self._slack_check
            try:
                await self.deps.client.auth_test()
                self._slack_check = "ok"
            except Exception as exc:
                self._slack_check = f"fail: {exc.__class__.__name__}"
            self._slack_checked_at = time.monotonic()
            return self._slack_check

    def liveness(self) -> str | None:
        """What /healthz fails on: a Socket Mode connection down for too long."""
        if self.socket_down_since is None:
            return None
        down = time.monotonic() - self.socket_down_since
        if down < self.socket_down_limit:
            return None
        return f"the Socket Mode connection has been down for {down:.0f} s"

    async def watch_socket(self, handler: AsyncSocketModeHandler) -> None:
        """Notice a dropped Socket Mode connection, reconnect with backoff, and log both.

        The SDK reconnects by itself when it can; when it doesn't within SOCKET_GRACE (Slack
        refusing new connections, the SDK's own monitor stuck), pmteam asks for a new
        endpoint itself, waiting longer after each failed try."""
        client = handler.client
        backoff = 1.0
        next_try = 0.0
        while True:
            await asyncio.sleep(SOCKET_CHECK_EVERY)
            connected = await client.is_connected()
            now = time.monotonic()
            if connected:
                if self.socket_down_since is not None:
                    log.info(
                        "Socket Mode reconnected",
                        down_seconds=round(now - self.socket_down_since, 1),
                    )
                self.socket_down_since, backoff, next_try = None, 1.0, 0.0
                self.deps.metrics.set("pmteam_socket_connected", 1)
                continue
            self.deps.metrics.set("pmteam_socket_connected", 0)
            if self.socket_down_since is None:
                self.socket_down_since = now
                log.warning("Socket Mode disconnected; reconnecting")
                next_try = now + SOCKET_GRACE
            if now < next_try:
                continue
            try:
                await client.connect_to_new_endpoint(force=True)
            except Exception as exc:
                log.warning(
                    "Socket Mode reconnect failed; trying again",
                    error=type(exc).__name__,
                    in_seconds=backoff,
                )
                next_try = time.monotonic() + backoff
                backoff = min(backoff * 2, SOCKET_BACKOFF_MAX)

    async def collect_gauges(self) -> None:
        """Gauges read when /metrics is scraped, so they are never stale."""
        metrics = self.deps.metrics
        metrics.set("pmteam_queue_depth", await self.queue.depth())
        metrics.set("pmteam_workers_busy", self.worker.busy)
        metrics.set("pmteam_seen_marks_waiting", self.deps.seen.waiting)


async def start(settings: Settings, *, migrate: bool = True, scheduler: bool = False) -> Pmteam:
    """Build and start everything; `stop` undoes it. Fails fast with a readable error.

    `scheduler=True` (what `pmteam run` does) also runs the standups and housekeeping jobs,
    and the scheduler's minutely `lease-sweeper` job replaces the worker's own sweep loop.
    Tests leave it off unless they are about the schedule.
    """
    if migrate:
        await asyncio.to_thread(upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    http_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    client = build_slack_client(settings, session=http_session)
    try:
        identity = await fetch_identity(client)
        installation = await load_installation(sessions)
    except BaseException:
        await http_session.close()
        await engine.dispose()
        raise
    deps = Deps(
        settings=settings,
        sessions=sessions,
        client=client,
        identity=identity,
        seen=SeenMarks(client),
        installation=installation,
    )
    models = build_models(settings, deps)
    team_servers = McpServers(settings.mcp_servers, call_timeout=settings.mcp_timeout_seconds)
    pipeline = TurnPipeline(
        deps=deps,
        model=models.client,
        agent_settings=models.agent_settings,
        ledger=models.ledger,
        poster=Poster(client=client, sessions=sessions, installation=installation),
        home_refresh=Coalesced(
            partial(refresh_homes, deps), spawn=deps.spawn, name="pmteam-home-refresh"
        ),
        team_servers=team_servers,
    )
    queue = TurnQueue(sessions, on_failed=pipeline.on_failed)
    worker = Worker(
        queue=queue,
        process=pipeline.process,
        concurrency=settings.max_concurrent_tasks,
        lease_seconds=settings.lease_seconds,
        # With the scheduler its `lease-sweeper` job is the one sweeper of the process.
        sweep_interval=None if scheduler else sweep_period(settings),
    )
    intake = Intake(
        deps=deps,
        writer=IntakeWriter(settings.database_url),
        limit=RateLimit(limit=settings.rate_limit_per_user, window=RATE_LIMIT_WINDOW),
        wake=worker.wake,
    )
    standups = build_standup_runner(deps, models)
    bolt = build_bolt_app(deps, intake=intake, standups=standups)
    pmteam = Pmteam(
        settings=settings,
        engine=engine,
        deps=deps,
        models=models,
        intake=intake,
        standups=standups,
        bolt=bolt,
        queue=queue,
        worker=worker,
        team_servers=team_servers,
    )
    try:
        http_app = build_http_app(
            bolt=bolt if settings.mode == "http" else None,
            metrics=deps.metrics,
            readiness=pmteam.readiness,
            collect=pmteam.collect_gauges,
            liveness=pmteam.liveness,
            signing_secret=(
                settings.slack_signing_secret.get_secret_value()
                if settings.mode == "http" and settings.slack_signing_secret
                else None
            ),
        )
        runner = web.AppRunner(http_app, access_log=None, shutdown_timeout=5)
        await runner.setup()
        pmteam.http_runner = runner
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        pmteam.http_port = int(runner.addresses[0][1]) if runner.addresses else settings.port

        # Before the worker, so the first turns see the team's tools; a server that is slow or
        # down is tried again in the background, its tools missing until it connects.
        await team_servers.start()
        await worker.start()
        if settings.mode == "socket":
            assert settings.slack_app_token is not None
            handler = AsyncSocketModeHandler(
                bolt, settings.slack_app_token.get_secret_value(), web_client=client
            )
            pmteam.socket_handler = handler
            await handler.connect_async()  # type: ignore[no-untyped-call]
            pmteam._socket_watch = asyncio.create_task(
                pmteam.watch_socket(handler), name="pmteam-socket-watch"
            )
        if scheduler:
            # After Slack is connected (or the HTTP server is up): a catch-up standup at start
            # must be able to post.
            jobs = build_scheduler(
                deps,
                standups=standups,
                housekeeping=Housekeeping(deps=deps),
                sweep=worker.sweep,
            )
            pmteam.scheduler = jobs
            jobs.start()
    except BaseException:
        # Whatever was started is stopped again: no port, worker or connection is left behind.
        await stop(pmteam)
        raise
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
    if pmteam._socket_watch is not None:
        pmteam._socket_watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pmteam._socket_watch
    if pmteam.socket_handler is not None:
        with contextlib.suppress(Exception):
            await pmteam.socket_handler.close_async()  # type: ignore[no-untyped-call]
    if pmteam.http_runner is not None:
        await pmteam.http_runner.cleanup()
    await pmteam.worker.stop()
    await pmteam.team_servers.close()
    await pmteam.deps.seen.close()
    await pmteam.deps.drain()
    await pmteam.intake.writer.close()
    await pmteam.models.close()
    await pmteam.engine.dispose()
    if pmteam.deps.client.session is not None:
        await pmteam.deps.client.session.close()
    log.info("pmteam stopped")


async def serve(settings: Settings) -> None:
    """`pmteam run`: start, then stop cleanly on SIGTERM or Ctrl-C."""
    # Handlers first: /healthz answers during start, and a SIGTERM from then on (an
    # orchestrator that gave up waiting) must still stop cleanly, not kill the process.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    pmteam = await start(settings, scheduler=True)
    # What start built lives as long as the process: take it out of the cyclic collector's
    # view, so full collections (tens of ms over ~250k objects) don't stall requests.
    gc.collect()
    gc.freeze()
    await stopping.wait()
    log.info("shutting down: no new turns are claimed; running turns get a grace period")
    await stop(pmteam)
