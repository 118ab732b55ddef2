"""Scheduled standups with a controlled clock: on time, late, skipped, empty, after a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from bot.core.cron import period_key
from bot.services.standups import Outcome
from sandbox.model import ApiError, FakeModel, Text
from sandbox.slack import FakeSlack
from storage.models import TaskStatus
from tests.conftest import _truncate_postgres
from tests.standup.conftest import COORDINATION, Clock, OpenRunner
from tests.standup.support import add_task, all_text, standup_key, standup_posts, standups

BERLIN = ZoneInfo("Europe/Berlin")
IN_BERLIN = {"PMTEAM_TIMEZONE": "Europe/Berlin"}


def berlin(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), BERLIN).astimezone(UTC)


MONDAY = date(2026, 3, 30)  # the first weekday on summer time in Berlin


async def test_weekday_standups_go_out_once_each_weekday_through_the_dst_change(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(berlin(date(2026, 3, 23), 6, 0))
    async with open_runner(clock, **IN_BERLIN) as runner:
        for offset in range(14):  # Mon 23 March to Sun 5 April
            day = date(2026, 3, 23) + timedelta(days=offset)
            for minute, second in ((30, 5), (31, 5), (45, 0)):  # the job, then later checks
                clock.set(berlin(day, 9, minute, second))
                await runner.run_due()

    weekdays = [date(2026, 3, 23) + timedelta(days=n) for n in range(14)]
    weekdays = [d for d in weekdays if d.weekday() < 5]
    assert [standup_key(m) for m in standup_posts(fake_slack, COORDINATION)] == [
        f"standup:{COORDINATION}:{d.isoformat()}T09:30" for d in weekdays
    ]
    rows = await standups(runner)
    assert [r.status for r in rows] == ["posted"] * 10
    # The Monday after the change went out at 09:30 summer time, 07:30 UTC.
    monday = next(r for r in rows if r.period == "2026-03-30T09:30")
    assert monday.posted_at == datetime(2026, 3, 30, 7, 30, 5, tzinfo=UTC)


async def test_a_slot_repeated_when_clocks_go_back_posts_once(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(datetime(2026, 10, 25, 0, 30, 5, tzinfo=UTC))  # 02:30:05 CEST
    async with open_runner(clock, PMTEAM_STANDUP_CRON="30 2 * * *", **IN_BERLIN) as runner:
        first = await runner.run_due()
        clock.set(datetime(2026, 10, 25, 1, 30, 5, tzinfo=UTC))  # 02:30:05 CET, an hour on
        second = await runner.run_due()

    assert [r.outcome for r in first] == [Outcome.POSTED]
    assert [r.outcome for r in second] == [Outcome.ALREADY_DONE]
    assert len(standup_posts(fake_slack, COORDINATION)) == 1


async def test_a_standup_missed_while_down_is_posted_late_within_the_grace_window(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(berlin(MONDAY, 10, 45))  # back 75 minutes after the 09:30 slot
    async with open_runner(clock, **IN_BERLIN) as runner:
        (result,) = await runner.run_due()
        again = await runner.run_due()

    assert result.outcome is Outcome.POSTED
    assert [r.outcome for r in again] == [Outcome.ALREADY_DONE]
    (post,) = standup_posts(fake_slack, COORDINATION)
    assert standup_key(post) == f"standup:{COORDINATION}:2026-03-30T09:30"
    assert (
        "Posted late: this standup was due at 09:30 (1 h 15 min ago; pmteam was not running then)."
    ) in all_text(post)
    (row,) = await standups(runner)
    assert row.status == "posted" and row.note and row.note.startswith("Posted late")


async def test_a_standup_missed_past_the_grace_window_is_skipped_and_logged_once(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(berlin(MONDAY, 11, 31))  # 121 minutes after the slot; grace is 120
    async with open_runner(clock, **IN_BERLIN) as runner:
        with capture_logs() as logs:
            (result,) = await runner.run_due()
            clock.advance(timedelta(minutes=1))
            (again,) = await runner.run_due()

    assert result.outcome is Outcome.SKIPPED
    assert again.outcome is Outcome.ALREADY_DONE
    assert standup_posts(fake_slack, COORDINATION) == []
    skipped = [entry for entry in logs if entry["event"] == "standup skipped"]
    assert len(skipped) == 1
    assert "past the 120-minute grace window" in skipped[0]["reason"]
    (row,) = await standups(runner)
    assert (row.status, row.period) == ("skipped", "2026-03-30T09:30")


async def test_an_empty_day_is_one_line(open_runner: OpenRunner, fake_slack: FakeSlack) -> None:
    clock = Clock(berlin(MONDAY, 9, 30, 5))
    async with open_runner(clock, **IN_BERLIN) as runner:
        (result,) = await runner.run_due()

    assert result.outcome is Outcome.POSTED
    (post,) = standup_posts(fake_slack, COORDINATION)
    assert post.blocks is not None and len(post.blocks) == 1
    assert post.blocks[0]["text"]["text"] == (
        "*Standup · Mon 30 Mar* — no activity since Fri 27 Mar 09:30 CET."
    )


async def test_an_empty_day_posts_nothing_with_skip_empty(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(berlin(MONDAY, 9, 30, 5))
    async with open_runner(clock, PMTEAM_STANDUP_SKIP_EMPTY="true", **IN_BERLIN) as runner:
        (result,) = await runner.run_due()
        (again,) = await runner.run_due()
        forced = await runner.post_now(COORDINATION)

    assert result.outcome is Outcome.EMPTY
    assert again.outcome is Outcome.ALREADY_DONE
    rows = await standups(runner)
    assert rows[0].status == "skipped" and "nothing to report" in (rows[0].note or "")
    # Asked for in person, an empty standup still goes out (as its one line).
    assert forced.outcome is Outcome.POSTED
    assert [standup_key(m) for m in standup_posts(fake_slack, COORDINATION)] == [
        f"standup:{COORDINATION}:adhoc:2026-03-30T09:30"
    ]


async def test_the_standup_goes_out_without_the_narrative_when_the_model_fails(
    open_runner: OpenRunner, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    clock = Clock(berlin(MONDAY, 9, 30, 5))
    async with open_runner(clock, **IN_BERLIN) as runner:
        await add_task(
            runner.deps.sessions,
            title="Orders pagination",
            status=TaskStatus.COMPLETED,
            at=berlin(MONDAY, 8, 0),
        )
        fake_model.script(*[ApiError(529, retry_after_ms=5)] * 3)
        (result,) = await runner.run_due()

    assert result.outcome is Outcome.POSTED
    assert len([r for r in fake_model.requests if r.path == "/v1/messages"]) == 3
    (post,) = standup_posts(fake_slack, COORDINATION)
    assert post.blocks is not None
    sections = [b["text"]["text"] for b in post.blocks if b["type"] == "section"]
    # No narrative: the first section is the structured list.
    assert sections[0].startswith(":white_check_mark: *Completed* (1)")
    assert "T-1 Orders pagination — avg 7.6 PM · 7.8 self" in sections[0]


async def test_the_narrative_sits_on_top_without_mass_mentions(
    open_runner: OpenRunner, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    clock = Clock(berlin(MONDAY, 9, 30, 5))
    async with open_runner(clock, **IN_BERLIN) as runner:
        await add_task(
            runner.deps.sessions,
            title="Orders pagination <!here>",
            status=TaskStatus.COMPLETED,
            at=berlin(MONDAY, 8, 0),
        )
        fake_model.script(Text("T-1 shipped. <!channel> please review @here."))
        await runner.run_due()

    (post,) = standup_posts(fake_slack, COORDINATION)
    assert post.blocks is not None
    sections = [b["text"]["text"] for b in post.blocks if b["type"] == "section"]
    assert sections[0].startswith("T-1 shipped.")
    text = all_text(post)
    for raw in ("<!channel", "<!here", "@here", "@channel"):
        assert raw not in text


async def test_a_restart_between_posting_and_recording_gives_one_post(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(berlin(MONDAY, 9, 30, 5))
    period = period_key(berlin(MONDAY, 9, 30), BERLIN)
    async with open_runner(clock, owner="crashed", **IN_BERLIN) as crashed:
        claim = await crashed.claim(COORDINATION, period)
        content = await crashed.compose(COORDINATION)
        ts = await crashed.post(claim, content)
        # ...and the process dies here, before `record`.

    clock.advance(timedelta(minutes=1))
    async with open_runner(clock, owner="restarted", **IN_BERLIN) as restarted:
        (while_leased,) = await restarted.run_due()
        clock.advance(timedelta(minutes=5))  # the crashed process's lease has run out
        (after_lease,) = await restarted.run_due()

    assert while_leased.outcome is Outcome.BUSY
    assert after_lease.outcome is Outcome.RECOVERED and after_lease.ts == ts
    assert [m.ts for m in standup_posts(fake_slack, COORDINATION)] == [ts]
    (row,) = await standups(restarted)
    assert (row.status, row.ts) == ("posted", ts)


async def test_a_restart_before_posting_posts_once_and_late(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(berlin(MONDAY, 9, 30, 5))
    period = period_key(berlin(MONDAY, 9, 30), BERLIN)
    async with open_runner(clock, owner="crashed", **IN_BERLIN) as crashed:
        await crashed.claim(COORDINATION, period)  # ...and dies while composing

    clock.advance(timedelta(minutes=6))
    async with open_runner(clock, owner="restarted", **IN_BERLIN) as restarted:
        (result,) = await restarted.run_due()
        await restarted.run_due()

    assert result.outcome is Outcome.POSTED
    (post,) = standup_posts(fake_slack, COORDINATION)
    assert "(6 min ago; a first try failed)" in all_text(post)


async def test_two_schedulers_on_one_postgres_database_post_each_standup_once(
    open_runner: OpenRunner, fake_slack: FakeSlack, postgres_database: str
) -> None:
    _truncate_postgres(postgres_database)
    clock = Clock(berlin(MONDAY, 9, 30, 0))
    on_postgres = {"database_url": postgres_database, **IN_BERLIN}
    async with (
        open_runner(clock, owner="replica-a", **on_postgres) as a,
        open_runner(clock, owner="replica-b", **on_postgres) as b,
    ):
        assert a.deps.sessions is not b.deps.sessions  # two engines, two pools
        outcomes = []
        for day in range(5):
            clock.set(berlin(MONDAY + timedelta(days=day), 9, 30, 0))
            results = await asyncio.gather(a.run_due(), b.run_due(), a.run_due(), b.run_due())
            outcomes.append(sorted(r.outcome for rs in results for r in rs))

    for day_outcomes in outcomes:
        assert day_outcomes.count(Outcome.POSTED) == 1
        assert set(day_outcomes) <= {Outcome.POSTED, Outcome.BUSY, Outcome.ALREADY_DONE}
    keys = [standup_key(m) for m in standup_posts(fake_slack, COORDINATION)]
    assert keys == [
        f"standup:{COORDINATION}:{(MONDAY + timedelta(days=d)).isoformat()}T09:30" for d in range(5)
    ]


@pytest.mark.parametrize("error", ["not_in_channel"])
async def test_a_refused_post_is_retried_after_the_lease_and_reported(
    open_runner: OpenRunner, fake_slack: FakeSlack, error: str
) -> None:
    clock = Clock(berlin(MONDAY, 9, 30, 5))
    async with open_runner(clock, **IN_BERLIN) as runner:
        fake_slack.inject("chat.postMessage", error=error)
        (failed,) = await runner.run_due()
        clock.advance(timedelta(minutes=6))
        (retried,) = await runner.run_due()

    assert failed.outcome is Outcome.FAILED
    assert "invite @pmteam" in failed.describe()
    assert retried.outcome is Outcome.POSTED
    assert len(standup_posts(fake_slack, COORDINATION)) == 1
