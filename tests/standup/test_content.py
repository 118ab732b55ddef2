"""What a standup says: the work since the channel's previous standup, readable and bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.calibration import calibrate
from bot.slack.blocks.standup import StandupView, build_standup_blocks, standup_fallback_text
from sandbox.model import FakeModel, Text
from sandbox.slack import FakeSlack
from storage.models import LLMCall, Report, Task, TaskStatus
from storage.queries import UsageRow, UsageSummary
from storage.standups import StandupDigest
from tests.standup.conftest import COORDINATION, ENGINEERING, Clock, OpenRunner
from tests.standup.support import RED_FLAG_REPORT, add_task, all_text, standup_posts

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_SLOT = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # 09:30 in Berlin
TUESDAY_SLOT = MONDAY_SLOT + timedelta(days=1)


async def test_the_standup_covers_the_work_since_the_previous_one(
    open_runner: OpenRunner, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    clock = Clock(MONDAY_SLOT + timedelta(seconds=5))
    async with open_runner(clock, PMTEAM_TIMEZONE="Europe/Berlin") as runner:
        sessions = runner.deps.sessions
        await add_task(
            sessions,
            title="Old work",
            status=TaskStatus.COMPLETED,
            at=MONDAY_SLOT - timedelta(hours=20),
        )
        await runner.run_due()  # Monday's standup covers "Old work"

        monday_afternoon = MONDAY_SLOT + timedelta(hours=5)
        linked = await add_task(
            sessions,
            title="Orders pagination",
            status=TaskStatus.COMPLETED,
            at=monday_afternoon,
            fake_slack=fake_slack,
        )
        await add_task(
            sessions,
            title="Billing events",
            status=TaskStatus.IN_PROGRESS,
            at=MONDAY_SLOT - timedelta(days=3),
            estimate=timedelta(hours=2),
        )
        await add_task(
            sessions,
            title="Search index",
            status=TaskStatus.BLOCKED,
            at=monday_afternoon,
            note="the staging cluster is down",
            dependencies_handoffs=[
                {"kind": "needed_from_others", "description": "DBA to grant cluster access"}
            ],
        )
        await add_task(
            sessions,
            title="Failover design",
            status=TaskStatus.COMPLETED,
            at=monday_afternoon,
            **RED_FLAG_REPORT,
        )
        await add_task(
            sessions,
            title="Payments API",
            status=TaskStatus.COMPLETED,
            at=monday_afternoon,
            dependencies_handoffs=[
                {"kind": "integration_endpoint_ready", "description": "POST /payments is live"}
            ],
        )
        async with sessions() as session:
            session.add(
                LLMCall(
                    agent="engineer",
                    model="claude-sonnet-5-5",
                    input_tokens=12_000,
                    output_tokens=3_000,
                    web_searches=2,
                    cost_usd=0.42,
                    created_at=monday_afternoon,
                )
            )
            await session.commit()
        fake_model.script(Text("T-2 shipped; T-4 is blocked on cluster access."))
        clock.set(TUESDAY_SLOT + timedelta(seconds=5))
        await runner.run_due()

    monday, tuesday = standup_posts(fake_slack, COORDINATION)
    assert "Old work" in all_text(monday)
    text = all_text(tuesday)
    assert "Old work" not in text  # it was in Monday's standup
    assert tuesday.blocks is not None
    assert tuesday.blocks[0]["type"] == "header"
    assert tuesday.blocks[0]["text"]["text"] == "Standup · Tue 31 Mar"
    assert "Since Mon 30 Mar 09:30 CEST" in text
    assert "T-2 shipped; T-4 is blocked on cluster access." in text
    permalink = f"{fake_slack.url}/archives/{ENGINEERING}/p{linked.thread_ts.replace('.', '')}"
    assert f"• <{permalink}|T-2> Orders pagination — avg 7.6 PM · 7.8 self" in text
    assert "• T-3 Billing events — open 4 d · estimate 2 hours · :warning: *overdue* by 3 d" in text
    assert (
        "• T-4 Search index — blocked 19 h: the staging cluster is down"
        " · waiting on: DBA to grant cluster access"
    ) in text
    assert ("• T-5 Failover design: Risk Assessment 4/9: no load test of the failover yet") in text
    assert "• T-6 Payments API: endpoint ready: POST /payments is live" in text
    assert ":bar_chart: Usage: 1 model call · 15,000 tokens · 2 web searches · $0.42" in text
    assert tuesday.text.startswith(
        "Standup · Tue 31 Mar: 3 completed, 1 in progress, 1 blocked, 1 new red flags, "
        "1 handoffs waiting."
    )


async def test_an_extra_channel_covers_the_tasks_asked_there(
    open_runner: OpenRunner, fake_slack: FakeSlack
) -> None:
    clock = Clock(MONDAY_SLOT + timedelta(seconds=5))
    schedules = {  # in UTC
        "PMTEAM_STANDUP_CRON": "30 7 * * *",
        "PMTEAM_STANDUP_CHANNELS": f"{ENGINEERING}=30 7 * * *",
    }
    async with open_runner(clock, **schedules) as runner:
        sessions = runner.deps.sessions
        at = MONDAY_SLOT - timedelta(hours=1)
        await add_task(sessions, title="Here", status=TaskStatus.COMPLETED, at=at)
        await add_task(
            sessions, title="Elsewhere", status=TaskStatus.COMPLETED, at=at, channel="C0OTHER"
        )
        await runner.run_due()

    (engineering,) = standup_posts(fake_slack, ENGINEERING)
    assert "Here" in all_text(engineering) and "Elsewhere" not in all_text(engineering)
    assert f"tasks asked in <#{ENGINEERING}>" in all_text(engineering)
    (coordination,) = standup_posts(fake_slack, COORDINATION)
    assert "Here" in all_text(coordination) and "Elsewhere" in all_text(coordination)


def _task(n: int, status: TaskStatus, now: datetime) -> Task:
    return Task(
        id=n,
        team_id="T1",
        channel_id="C1",
        thread_ts=f"1.{n}",
        requester_id="U1",
        title=f"<!channel> task {n} " + "very long title " * 12,
        request_text="x",
        status=status,
        status_reason="waiting for @everyone " + "and more " * 60,
        estimated_time="2 days",
        estimate_due_at=now - timedelta(hours=1),
        created_at=now - timedelta(days=2),
        updated_at=now - timedelta(hours=3),
    )


def test_a_busy_period_stays_within_slack_limits_and_pings_nobody() -> None:
    now = datetime(2026, 3, 31, 7, 30, tzinfo=UTC)
    flags = {"red_flags": [{"axis": "pm_scores.risk_assessment", "explanation": "y " * 400}]}
    report = Report(
        id=1, task_id=1, turn_id=1, status="COMPLETED", data=flags, red_flag_count=1, min_score=3
    )
    many: list[tuple[Task, Report | None]] = [
        (_task(n, TaskStatus.COMPLETED, now), report) for n in range(25)
    ]
    digest = StandupDigest(
        since=now - timedelta(days=1),
        until=now,
        completed=many,
        in_progress=[(_task(n, TaskStatus.IN_PROGRESS, now), None) for n in range(25, 50)],
        blocked=[(_task(n, TaskStatus.BLOCKED, now), report) for n in range(50, 75)],
        red_flags=[(report, task) for task, _ in many],
        handoffs=[],
        usage=UsageSummary(rows=[UsageRow("engineer", "m", 3, 1, 2, 3, 4, 0, 1.5)]),
        limit=25,
    )
    view = StandupView(digest=digest, timezone=BERLIN, day=now, narrative="<!here> all fine " * 200)

    blocks = build_standup_blocks(view)

    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    completed = next(b for b in blocks if "*Completed* (25+)" in b.get("text", {}).get("text", ""))
    assert "more" in completed["text"]["text"]  # what doesn't fit is counted, not cut mid-link
    rendered = str(blocks) + standup_fallback_text(view)
    for raw in ("<!channel", "<!here", "@everyone", "@here"):
        assert raw not in rendered


def test_a_weeks_first_standup_carries_the_calibration() -> None:
    now = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # a Monday
    digest = StandupDigest(
        since=now - timedelta(days=3),
        until=now,
        completed=[(_task(1, TaskStatus.COMPLETED, now), None)],
        in_progress=[],
        blocked=[],
        red_flags=[],
        handoffs=[],
        usage=UsageSummary(rows=[]),
        limit=25,
    )
    few = calibrate([])
    blocks = build_standup_blocks(
        StandupView(digest=digest, timezone=BERLIN, day=now, calibration=few)
    )
    text = str(blocks)
    assert "Self-score calibration" in text and "Too few finished tasks" in text
    assert "Self-score calibration" not in str(
        build_standup_blocks(StandupView(digest=digest, timezone=BERLIN, day=now))
    )
