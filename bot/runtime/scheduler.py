"""The one APScheduler of a process: runs the jobs it is given, each under a stable id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = structlog.get_logger("pmteam.scheduler")

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
