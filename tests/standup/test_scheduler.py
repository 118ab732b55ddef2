"""The scheduler inside pmteam: its jobs, one sweeper, clean stop, and replicas sharing a DB."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.interval import IntervalTrigger
from structlog.testing import capture_logs

from bot.app import (
    JOB_DEDUPE_KEYS,
    JOB_LEASE_SWEEPER,
    JOB_NUDGES,
    JOB_RETENTION,
    JOB_STANDUP_CHECK,
    JOB_TASK_COUNTS,
    JOB_UNPOSTED_REPORTS,
    Pmteam,
    standup_job_id,
    start,
    stop,
)
from bot.runtime.scheduler import JobScheduler
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.models import Task, Turn, TurnStatus
from tests.conftest import _truncate_postgres
from tests.e2e.conftest import e2e_settings
from tests.standup.conftest import COORDINATION, ENGINEERING
from tests.standup.support import standup_key, standup_posts

NEVER_NEAR_NOW = "0 0 29 2 *"  # 29 February: no slot inside the look-back window today


@contextlib.asynccontextmanager
async def running_pmteam(
    database_url: str,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    *,
    scheduler: bool = True,
    **overrides: Any,
) -> AsyncIterator[Pmteam]:
    """pmteam as `pmteam run` starts it (with its scheduler), wired to the fakes."""
    settings = e2e_settings(
        database_url=database_url, fake_slack=fake_slack, fake_model=fake_model, **overrides
    )
    pmteam = await start(settings, migrate=False, scheduler=scheduler)
    try:
        yield pmteam
    finally:
        await stop(pmteam)


async def test_pmteam_run_schedules_each_job_once_with_a_stable_id(
    sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    overrides: dict[str, Any] = {
        "PMTEAM_STANDUP_CRON": NEVER_NEAR_NOW,
        "PMTEAM_STANDUP_CHANNELS": f"{ENGINEERING}={NEVER_NEAR_NOW}",
        "PMTEAM_RETENTION_DAYS": 90,
        "PMTEAM_TIMEZONE": "Europe/Berlin",
    }
    async with running_pmteam(sqlite_url, fake_slack, fake_model, **overrides) as pmteam:
        jobs = pmteam.scheduler
        assert isinstance(jobs, JobScheduler)
        assert jobs.job_ids == sorted(
            [
                standup_job_id(COORDINATION),
                standup_job_id(ENGINEERING),
                JOB_STANDUP_CHECK,
                JOB_LEASE_SWEEPER,
                JOB_NUDGES,
                JOB_RETENTION,
                JOB_DEDUPE_KEYS,
                JOB_TASK_COUNTS,
                JOB_UNPOSTED_REPORTS,
            ]
        )
        assert str(jobs.scheduler.timezone) == "Europe/Berlin"
        sweeper = jobs.scheduler.get_job(JOB_LEASE_SWEEPER)
        assert isinstance(sweeper.trigger, IntervalTrigger)
        # A third of the lease (30 s in these tests): takeover within lease + 10 s.
        assert sweeper.trigger.interval == timedelta(seconds=10)
        # One sweeper per process: the worker's own loop is off while the job runs.
        assert pmteam.worker.sweep_interval is None
        names = [task.get_name() for task in asyncio.all_tasks()]
        assert "pmteam-lease-sweeper" not in names

        # The job is the worker's sweep: a turn whose process died is recovered by it.
        past = datetime.now(UTC) - timedelta(minutes=10)
        async with pmteam.deps.sessions() as session:
            task = Task(
                team_id="T0SANDBOX",
                channel_id=ENGINEERING,
                thread_ts="1774000000.000001",
                requester_id="U0ALICE",
                title="t",
                request_text="t",
                status="working",
            )
            session.add(task)
            await session.flush()
            assert task.id is not None
            turn = Turn(
                task_id=task.id,
                seq=1,
                team_id="T0SANDBOX",
                channel_id=ENGINEERING,
                message_ts="1774000000.000001",
                user_id="U0ALICE",
                text="t",
                status=TurnStatus.RUNNING,
                attempts=2,
                lease_owner="a-dead-process",
                lease_expires_at=past,
            )
            session.add(turn)
            await session.commit()
        with capture_logs() as logs:
            await sweeper.func()
        assert any(entry["event"] == "leases expired" for entry in logs)
        async with pmteam.deps.sessions() as session:
            swept = await session.get(Turn, turn.id)
            assert swept is not None and swept.status == TurnStatus.FAILED

    assert not jobs.scheduler.running


async def test_the_scheduler_is_off_unless_asked_for(
    sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    settings = e2e_settings(database_url=sqlite_url, fake_slack=fake_slack, fake_model=fake_model)
    pmteam = await start(settings, migrate=False)
    try:
        assert pmteam.scheduler is None
        assert pmteam.worker.sweep_interval == 10.0  # a third of the 30 s lease
        assert "pmteam-lease-sweeper" in [task.get_name() for task in asyncio.all_tasks()]
    finally:
        await stop(pmteam)


async def test_stop_lets_a_running_job_finish_and_survives_a_failing_one() -> None:
    jobs = JobScheduler(timezone=ZoneInfo("UTC"))
    finished: list[str] = []
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append("slow")

    async def broken() -> None:
        raise RuntimeError("boom")

    now = datetime.now(UTC)
    jobs.add("slow", slow, IntervalTrigger(hours=1), next_run_time=now)
    jobs.add("broken", broken, IntervalTrigger(hours=1), next_run_time=now)
    jobs.add("slow", slow, IntervalTrigger(hours=1), next_run_time=now)  # replaces, not adds
    with capture_logs() as logs:
        jobs.start()
        await asyncio.wait_for(started.wait(), timeout=5)
        assert jobs.job_ids == ["broken", "slow"]
        await jobs.stop(grace=5)

    assert not jobs.scheduler.running
    assert finished == ["slow"]  # not cancelled half-way by the shutdown
    assert any(
        entry["event"] == "scheduled job failed" and entry["job"] == "broken" for entry in logs
    )


async def test_two_pmteam_instances_on_one_postgres_post_each_standup_once(
    postgres_database: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    _truncate_postgres(postgres_database)
    every_minute: dict[str, Any] = {"PMTEAM_STANDUP_CRON": "* * * * *"}
    async with (
        running_pmteam(postgres_database, fake_slack, fake_model, **every_minute) as a,
        running_pmteam(postgres_database, fake_slack, fake_model, **every_minute) as b,
    ):
        assert a.engine is not b.engine
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not standup_posts(fake_slack, COORDINATION) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # time for the other instance to have tried too

    keys = Counter(standup_key(m) for m in standup_posts(fake_slack, COORDINATION))
    assert keys, "no standup was posted"
    assert set(keys.values()) == {1}, keys
