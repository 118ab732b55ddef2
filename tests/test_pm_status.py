"""The pure parts of status: periods, who may move a task where, and the board's Slack limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.reports import CompletionReport
from bot.core.pm_grammar import Period
from bot.core.task_rules import TaskMove, move_refusal
from bot.services.status import period_start
from bot.slack.blocks.home import HomeBoard, build_home_view
from bot.slack.blocks.pm import build_task_list_blocks, decode_page, encode_page
from bot.slack.blocks.report import ACTION_ACKNOWLEDGE, ACTION_REOPEN
from storage.models import Report, Task, TaskStatus
from storage.queries import ListKind, TaskFilter, UsageSummary
from tests.e2e.conftest import report_json

NOW = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("period", "timezone", "expected"),
    [
        (Period.WEEK, "UTC", datetime(2026, 11, 23, 0, 0, tzinfo=UTC)),
        (Period.MONTH, "UTC", datetime(2026, 11, 1, 0, 0, tzinfo=UTC)),
        # Monday midnight in Berlin is Sunday 23:00 UTC.
        (Period.WEEK, "Europe/Berlin", datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        # Thursday 19:00 UTC is already Friday in Auckland.
        (Period.WEEK, "Pacific/Auckland", datetime(2026, 11, 22, 11, 0, tzinfo=UTC)),
    ],
)
def test_periods_start_at_local_midnight(period: Period, timezone: str, expected: datetime) -> None:
    assert period_start(period, now=NOW, timezone=timezone) == expected


def task(status: TaskStatus, requester: str = "U0ALICE", task_id: int = 7) -> Task:
    return Task(
        id=task_id,
        team_id="T1",
        channel_id="C1",
        thread_ts="1.1",
        requester_id=requester,
        title="Design the orders API",
        request_text="Design the orders API",
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )


def report(**overrides: Any) -> Report:
    data = report_json(**overrides)
    return Report(id=1, task_id=7, turn_id=1, status=data["status"], data=data, created_at=NOW)


def refusal(
    move: TaskMove,
    status: TaskStatus,
    *,
    user: str = "U0BOB",
    pm_users: tuple[str, ...] = (),
    has_report: bool = True,
    acknowledged_by: str | None = None,
) -> str | None:
    return move_refusal(
        move=move,
        task=task(status),
        user_id=user,
        pm_users=list(pm_users),
        report=report() if has_report else None,
        acknowledged_by=acknowledged_by,
    )


S = TaskStatus
ALLOWED = [
    (TaskMove.MARK_DONE, S.IN_PROGRESS),
    (TaskMove.MARK_DONE, S.BLOCKED),
    (TaskMove.MARK_DONE, S.FAILED),
    (TaskMove.MARK_BLOCKED, S.IN_PROGRESS),
    (TaskMove.REOPEN, S.COMPLETED),
    (TaskMove.REOPEN, S.BLOCKED),
    (TaskMove.REOPEN, S.FAILED),
    (TaskMove.ACKNOWLEDGE, S.COMPLETED),
]
REFUSED = [
    (TaskMove.MARK_DONE, S.COMPLETED, "T-7 is already completed."),
    (TaskMove.MARK_BLOCKED, S.COMPLETED, "T-7 is completed; it can't be moved to blocked."),
    (TaskMove.MARK_BLOCKED, S.FAILED, "T-7 is failed; it can't be moved to blocked."),
    (TaskMove.MARK_BLOCKED, S.BLOCKED, "T-7 is already blocked."),
    (TaskMove.MARK_DONE, S.WORKING, "T-7 is working right now"),
    (TaskMove.MARK_BLOCKED, S.QUEUED, "T-7 is queued right now"),
    (TaskMove.REOPEN, S.QUEUED, "T-7 is already queued; it needs no reopening."),
    (TaskMove.REOPEN, S.WORKING, "T-7 is already working; it needs no reopening."),
    (TaskMove.REOPEN, S.IN_PROGRESS, "T-7 is still in progress; it needs no reopening."),
]


@pytest.mark.parametrize(("move", "status"), ALLOWED)
def test_allowed_moves(move: TaskMove, status: TaskStatus) -> None:
    assert refusal(move, status) is None


@pytest.mark.parametrize(("move", "status", "says"), REFUSED)
def test_refused_moves_say_why(move: TaskMove, status: TaskStatus, says: str) -> None:
    text = refusal(move, status)

    assert text is not None and text.startswith(says)


def test_with_pms_set_only_they_and_the_requester_change_status() -> None:
    pms = ("U0BOB",)

    assert refusal(TaskMove.MARK_DONE, S.IN_PROGRESS, user="U0BOB", pm_users=pms) is None
    assert refusal(TaskMove.MARK_DONE, S.IN_PROGRESS, user="U0ALICE", pm_users=pms) is None
    carol = refusal(TaskMove.MARK_DONE, S.IN_PROGRESS, user="U0CAROL", pm_users=pms)
    assert carol is not None and carol.startswith("Only <@U0ALICE> (who asked for T-7)")
    # Acknowledging is the PM's alone, even for the requester.
    alice = refusal(TaskMove.ACKNOWLEDGE, S.COMPLETED, user="U0ALICE", pm_users=pms)
    assert alice == "Only a project manager (PMTEAM_PM_USERS) can acknowledge reports."


def test_acknowledging_needs_an_unacknowledged_report() -> None:
    assert refusal(TaskMove.ACKNOWLEDGE, S.QUEUED, has_report=False) == (
        "T-7 has no report to acknowledge yet."
    )
    assert refusal(TaskMove.ACKNOWLEDGE, S.COMPLETED, acknowledged_by="U0BOB") == (
        "T-7's latest report was already acknowledged by <@U0BOB>."
    )


def test_the_next_page_button_round_trips_and_rejects_junk() -> None:
    task_filter = TaskFilter(kind=ListKind.USER, user_id="U0BOB")

    assert decode_page(encode_page(task_filter, 42)) == (task_filter, 42)
    for junk in ("", "{", "[]", '{"kind":"nope","before":3}', '{"kind":"open","before":0}'):
        assert decode_page(junk) is None


def test_a_list_page_stays_within_the_message_limit() -> None:
    blocks = build_task_list_blocks(
        TaskFilter(kind=ListKind.OPEN),
        [task(S.BLOCKED, task_id=n) for n in range(1, 80)],
        next_before_id=1,
    )

    assert len(blocks) <= 50


def test_the_board_stays_within_the_home_limit_and_escapes_model_text() -> None:
    loud = report(task="<!here> ship it " + "x" * 400, status="IN_PROGRESS", estimated_time="1d")
    assert CompletionReport.model_validate(loud.data)
    many = [task(S.BLOCKED, task_id=n) for n in range(1, 40)]
    for item in many:
        item.title = "<!channel> " + "y" * 300
        item.status_reason = "z" * 5000
    board = HomeBoard(
        counts=dict.fromkeys(TaskStatus, 10**9),
        blocked=many,
        reports=[(loud, item) for item in many],
        red_flags=[(loud, item) for item in many],
        usage=UsageSummary(),
        week_start=NOW - timedelta(days=3),
        built_at=NOW,
    )

    view = build_home_view(
        board,
        many,
        notice="T-7 is already completed.",
        acknowledge_action=ACTION_ACKNOWLEDGE,
        reopen_action=ACTION_REOPEN,
    )

    blocks = view["blocks"]
    assert view["type"] == "home" and len(blocks) <= 100
    assert all(len((b.get("text") or {}).get("text", "")) <= 3000 for b in blocks)
    text = str(blocks)
    assert "<!here>" not in text and "<!channel>" not in text
    assert "&lt;!here&gt;" in text
