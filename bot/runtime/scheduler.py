"""The one APScheduler of a process: standups on their crontabs, the lease sweeper, housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

if TYPE_CHECKING:
    from bot.services.deps import Deps
    from bot.services.housekeeping import Housekeeping
    from bot.services.standups import StandupRunner

log = structlog.get_logger("pmteam.scheduler")

JOB_LEASE_SWEEPER = "lease-sweeper"
JOB_STANDUP_CHECK = "standup-check"
JOB_NUDGES = "task-nudges"
JOB_RETENTION = "retention"
JOB_DEDUPE_KEYS = "dedupe-keys"

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 = Sunday
_DAY_ITEM = re.compile(r"^(?P<start>\*|\w+)(?:-(?P<end>\w+))?(?:/(?P<step>\d+))?$")


def standup_job_id(channel_id: str) -> str:
    return f"standup:{channel_id}"


def _cron_day(token: str) -> int:
    token = token.lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7  # both 0 and 7 are Sunday
    if token[:3] in _CRON_DAYS and len(token) == 3:
        return _CRON_DAYS.index(token)
    raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")


def _day_of_week(field_text: str) -> str:
    """The crontab weekday field in APScheduler's terms.

    APScheduler numbers days from Monday = 0, crontab from Sunday = 0 (and 7), so `1-5` means
    Tuesday to Saturday to APScheduler but Monday to Friday to everyone who writes a crontab.
    Every item is expanded to day names, which mean the same thing to both.
    """
    if field_text in ("*", "?"):
        return "*"
    days: list[int] = []
    for item in field_text.split(","):
        match = _DAY_ITEM.match(item.strip())
        if match is None:
            raise ValueError(f"{item!r} is not a weekday item")
        start, end, step = match["start"], match["end"], int(match["step"] or 1)
        if step < 1:
            raise ValueError("a weekday step must be at least 1")
        if start == "*":
            if end is not None:
                raise ValueError(f"{item!r} is not a weekday item")
            first, last = 0, 6
        else:
            first = _cron_day(start)
            last = _cron_day(end) if end is not None else (6 if match["step"] else first)
            if end is not None and last == 0 and first > 0:
                last = 7  # `5-7` (or fri-sun) is Friday to Sunday
            if last < first:
                raise ValueError(f"{item!r} runs backwards; write it as two ranges")
        days.extend(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(set(days)))


def crontab_trigger(expr: str, *, timezone: tzinfo) -> CronTrigger:
    """A CronTrigger for a standard 5-field crontab line, with crontab's weekday numbering."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields, this one has {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_day_of_week(weekday),
        timezone=timezone,
    )


def last_fire_time(trigger: CronTrigger, *, now: datetime, lookback: timedelta) -> datetime | None:
    """The latest time at or before `now` that `trigger` fires, looking back at most `lookback`.

    APScheduler only computes forwards, so this widens a window backwards until it holds a
    fire time, then walks forwards through the window to the last one.
    """
    window = min(timedelta(hours=1), lookback)
    while True:
        start = now - window
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        if fire is not None and fire <= now:
            while True:
                following = trigger.get_next_fire_time(fire, fire)
                if following is None or following > now:
                    return fire
                fire = following
        if window >= lookback:
            return None
        window = min(window * 4, lookback)


Job = Callable[[], Awaitable[object]]


@dataclass
class JobScheduler:
    """One `AsyncIOScheduler(timezone=…)`; jobs have stable ids and never run twice at once.

    APScheduler's own shutdown cancels coroutine jobs mid-flight; `stop` first pauses (no new
    runs), then gives the running ones a grace period, so a standup is not cut off between
    posting and recording it when the process stops in an orderly way.
    """

    timezone: ZoneInfo
    scheduler: AsyncIOScheduler = field(init=False)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _running: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.scheduler = AsyncIOScheduler(
            timezone=self.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )

    def add(
        self,
        job_id: str,
        job: Job,
        trigger: Any,
        *,
        misfire_grace_time: int | None = 60,
        next_run_time: datetime | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {}
        if next_run_time is not None:
            kwargs["next_run_time"] = next_run_time
        self.scheduler.add_job(
            self._tracked(job_id, job),
            trigger=trigger,
            id=job_id,
            name=job_id,
            replace_existing=True,
            misfire_grace_time=misfire_grace_time,
            **kwargs,
        )

    def _tracked(self, job_id: str, job: Job) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                with structlog.contextvars.bound_contextvars(job=job_id):
                    await job()
            except Exception:
                log.exception("scheduled job failed", job=job_id)
            finally:
                if task is not None:
                    self._running.discard(task)

        return run

    @property
    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

    def next_run(self, job_id: str) -> datetime | None:
        job = self.scheduler.get_job(job_id)
        return None if job is None else job.next_run_time

    def start(self) -> None:
        # APScheduler says "Running job …" at INFO for every minutely run; warnings still show.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        self.scheduler.start()
        log.info("scheduler started", jobs=self.job_ids, timezone=str(self.timezone))

    async def stop(self, *, grace: float = 30.0) -> None:
        if self.scheduler.running:
            self.scheduler.pause()
            running = list(self._running)
            if running:
                log.info("waiting for scheduled jobs", jobs=len(running))
                _done, pending = await asyncio.wait(running, timeout=grace)
                for task in pending:
                    task.cancel()
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # the shutdown itself runs on the next loop iteration
        for callback in self.on_stop:
            with contextlib.suppress(Exception):
                await callback()
        log.info("scheduler stopped")


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
    - `task-nudges` (every 5 minutes), `retention` and `dedupe-keys` (hourly).
    """
    settings = deps.settings
    timezone = ZoneInfo(settings.timezone)
    jobs = JobScheduler(timezone=timezone)
    grace_s = max(settings.standup_grace_minutes * 60, 60)
    for schedule in standups.schedules:
        channel = schedule.channel_id
        jobs.add(
            standup_job_id(channel),
            _bind(standups.run_channel, channel),
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
        jobs.add(JOB_LEASE_SWEEPER, sweep, IntervalTrigger(minutes=1, timezone=timezone))
    jobs.add(JOB_NUDGES, housekeeping.nudge_overdue_tasks, IntervalTrigger(minutes=5))
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
    jobs.on_stop.append(standups.close)
    return jobs


def _bind(run: Callable[[str], Awaitable[object]], channel_id: str) -> Job:
    async def job() -> object:
        return await run(channel_id)

    return job


async def start_scheduler(deps: Deps, *, sweep: Job | None) -> JobScheduler:
    """Build and start the scheduler; `JobScheduler.stop` shuts it down and closes its clients."""
    from bot.services.housekeeping import Housekeeping
    from bot.services.standups import StandupRunner

    standups = StandupRunner.for_runtime(deps)
    jobs = build_scheduler(
        deps, standups=standups, housekeeping=Housekeeping(deps=deps), sweep=sweep
    )
    jobs.start()
    return jobs
