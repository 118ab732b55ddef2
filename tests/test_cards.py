"""The task card and the answer's summary line: the moves a task's state allows, the buttons,
the lines a card's thread gets, and that Slack accepts every block built. Pure code only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agents.reports import PM_AXES, SELF_AXES, CompletionReport, ReportStatus, ScoreAxis
from bot.core.task_rules import TaskMove, move_refusal, state_moves
from bot.slack.blocks.common import Block
from bot.slack.blocks.modal import ClickOrigin, build_reopen_modal
from bot.slack.blocks.pm import ratings_phrase
from bot.slack.blocks.report import (
    ACTION_ACKNOWLEDGE,
    ACTION_DETAILS,
    ACTION_FEEDBACK,
    ACTION_MARK_BLOCKED,
    ACTION_MARK_DONE,
    ACTION_REOPEN,
    ACTION_SHARE,
    ACTION_STOP,
    build_card_line,
    build_details_modal,
    build_move_line,
    build_report_blocks,
    build_summary_blocks,
    build_task_actions,
    build_working_blocks,
    card_status,
    feedback_block,
    summary_text,
)
from bot.slack.blocks.standup import StandupView, usage_line
from sandbox.slack.blocks import block_errors, view_errors
from storage.models import Task, TaskEvent, TaskStatus, Visibility
from storage.queries import UsageRow, UsageSummary
from storage.standups import StandupDigest
from tests.e2e.conftest import report_json

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ALICE = "U0ALICE"
BOB = "U0BOB"
WORKING_LINE = "Working on it; the buttons come back when it reports."

LOW_RISK_FLAG = {
    "axis": "risk_assessment",
    "explanation": "no load test of the failover yet",
    "mitigation": "run the failover drill on staging",
}
LOW_SCALE_FLAG = {
    "axis": "scalability_performance",
    "explanation": "one writer only",
    "mitigation": "shard by merchant",
}
ALL_MOVES = [TaskMove.ACKNOWLEDGE, TaskMove.MARK_BLOCKED, TaskMove.MARK_DONE, TaskMove.REOPEN]


def make_task(
    status: TaskStatus = TaskStatus.COMPLETED, visibility: Visibility = Visibility.CHANNEL
) -> Task:
    return Task(
        id=7,
        team_id="T",
        channel_id="C1",
        thread_ts="1.0",
        requester_id=ALICE,
        title="t",
        request_text="t",
        status=status,
        visibility=visibility,
    )


def make_report(**overrides: Any) -> CompletionReport:
    return CompletionReport.model_validate(report_json(**overrides))


def risky_report(**overrides: Any) -> CompletionReport:
    """Risk Assessment 4/9 (shared by both views) and Scalability 5/9 (PM only), flagged."""
    return make_report(
        pm_scores={
            "system_architecture_design": 8,
            "scalability_performance": 5,
            "integration_reliability": 8,
        },
        self_assessment={
            "probability_of_success": 8,
            "implementation_feasibility": 7,
            "quality_completeness": 7,
            "risk_assessment": 4,
            "alignment_value": 9,
        },
        red_flags=[LOW_RISK_FLAG, LOW_SCALE_FLAG],
        **overrides,
    )


def event(
    kind: str = "status", to_status: TaskStatus | None = None, note: str | None = None
) -> TaskEvent:
    return TaskEvent(task_id=7, kind=kind, to_status=to_status, actor=BOB, note=note)


def texts(blocks: list[Block]) -> str:
    """Every text a reader sees in the blocks, joined."""
    parts: list[str] = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [field["text"] for field in block.get("fields", [])]
        parts += [element.get("text", "") for element in block.get("elements", [])]
    return "\n".join(str(part) for part in parts)


def contexts(blocks: list[Block]) -> list[str]:
    return [
        str(element["text"])
        for block in blocks
        if block["type"] == "context"
        for element in block["elements"]
    ]


def action_ids(blocks: list[Block]) -> list[str]:
    return [
        str(element["action_id"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def assert_slack_accepts(blocks: list[Block]) -> None:
    assert block_errors(blocks) == []


# --- state_moves / move_refusal ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (TaskStatus.QUEUED, []),
        (TaskStatus.WORKING, []),
        (TaskStatus.IN_PROGRESS, [TaskMove.MARK_BLOCKED, TaskMove.MARK_DONE]),
        (TaskStatus.BLOCKED, [TaskMove.MARK_DONE, TaskMove.REOPEN]),
        (TaskStatus.COMPLETED, [TaskMove.REOPEN]),
        (TaskStatus.FAILED, [TaskMove.MARK_DONE, TaskMove.REOPEN]),
    ],
)
def test_state_moves_per_status(status: TaskStatus, expected: list[TaskMove]) -> None:
    task = make_task(status)
    assert state_moves(task, has_report=False, acknowledged=False) == expected
    assert state_moves(task, has_report=True, acknowledged=True) == expected
    assert state_moves(task, has_report=True, acknowledged=False) == [
        TaskMove.ACKNOWLEDGE,
        *expected,
    ]


def test_reopen_is_refused_on_a_task_still_in_progress() -> None:
    refusal = move_refusal(
        move=TaskMove.REOPEN,
        task=make_task(TaskStatus.IN_PROGRESS),
        user_id=ALICE,
        pm_users=[],
        report=None,
        acknowledged_by=None,
    )
    assert refusal is not None and "still in progress" in refusal


@pytest.mark.parametrize("move", [TaskMove.MARK_BLOCKED, TaskMove.MARK_DONE, TaskMove.REOPEN])
def test_a_private_task_is_moved_only_by_its_requester(move: TaskMove) -> None:
    status = TaskStatus.COMPLETED if move is TaskMove.REOPEN else TaskStatus.IN_PROGRESS
    task = make_task(status, Visibility.PRIVATE)
    refusal = move_refusal(
        move=move, task=task, user_id=BOB, pm_users=[BOB], report=None, acknowledged_by=None
    )
    assert refusal is not None and "privately" in refusal
    assert (
        move_refusal(
            move=move, task=task, user_id=ALICE, pm_users=[BOB], report=None, acknowledged_by=None
        )
        is None
    )


# --- card_status and the buttons --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (TaskStatus.COMPLETED, ReportStatus.COMPLETED),
        (TaskStatus.IN_PROGRESS, ReportStatus.IN_PROGRESS),
        (TaskStatus.BLOCKED, ReportStatus.BLOCKED),
        (TaskStatus.QUEUED, ReportStatus.IN_PROGRESS),
        (TaskStatus.WORKING, ReportStatus.IN_PROGRESS),
        (TaskStatus.FAILED, ReportStatus.BLOCKED),  # a failed later turn keeps the report's
    ],
)
def test_card_status_follows_the_task(status: TaskStatus, shown: ReportStatus) -> None:
    report = make_report(status="BLOCKED")
    assert card_status(make_task(status), report) is shown


def test_no_moves_no_buttons() -> None:
    assert build_task_actions(make_task(), []) is None


def test_the_buttons_follow_the_moves_in_order_and_carry_the_task_id() -> None:
    actions = build_task_actions(make_task(), ALL_MOVES)
    assert actions is not None
    assert action_ids([actions]) == [
        ACTION_ACKNOWLEDGE,
        ACTION_MARK_BLOCKED,
        ACTION_MARK_DONE,
        ACTION_REOPEN,
    ]
    assert [element["value"] for element in actions["elements"]] == ["7"] * 4
    assert_slack_accepts([actions])
    reversed_actions = build_task_actions(make_task(), [TaskMove.REOPEN, TaskMove.ACKNOWLEDGE])
    assert reversed_actions is not None
    assert action_ids([reversed_actions]) == [ACTION_REOPEN, ACTION_ACKNOWLEDGE]


# --- the card ---------------------------------------------------------------------------------


def test_the_card_shows_the_status_given_and_its_buttons() -> None:
    task = make_task(TaskStatus.IN_PROGRESS)
    blocks = build_report_blocks(
        make_report(),
        task,
        "https://slack.example/p1",
        status=ReportStatus.IN_PROGRESS,
        moves=state_moves(task, has_report=True, acknowledged=False),
    )
    status_field = blocks[1]["fields"][1]["text"]
    assert status_field == "*Status:*\n⏳ IN PROGRESS"
    assert action_ids(blocks) == [ACTION_ACKNOWLEDGE, ACTION_MARK_BLOCKED, ACTION_MARK_DONE]
    assert WORKING_LINE not in texts(blocks)
    assert contexts(blocks)[-1] == (
        "T-7 · requested by <@U0ALICE> in <#C1> · <https://slack.example/p1|View the thread>"
    )
    assert_slack_accepts(blocks)


def test_without_a_status_the_card_shows_the_reports() -> None:
    blocks = build_report_blocks(make_report(), make_task(), None)
    assert blocks[1]["fields"][1]["text"] == "*Status:*\n✅ COMPLETED"
    assert action_ids(blocks) == []
    assert "thread link unavailable" in contexts(blocks)[-1]
    assert_slack_accepts(blocks)


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.WORKING])
def test_a_busy_task_shows_the_working_line_and_no_buttons(status: TaskStatus) -> None:
    task = make_task(status)
    blocks = build_report_blocks(
        make_report(),
        task,
        "https://slack.example/p1",
        status=ReportStatus.IN_PROGRESS,
        moves=state_moves(task, has_report=True, acknowledged=True),
    )
    assert any(WORKING_LINE in line for line in contexts(blocks))
    assert action_ids(blocks) == []
    assert_slack_accepts(blocks)


@pytest.mark.parametrize("visibility", [Visibility.SHARED, Visibility.PRIVATE])
def test_a_privately_asked_task_names_no_channel_and_links_nothing(
    visibility: Visibility,
) -> None:
    blocks = build_report_blocks(
        make_report(), make_task(visibility=visibility), "https://slack.example/p1"
    )
    footer = contexts(blocks)[-1]
    assert footer == "T-7 · asked privately by <@U0ALICE>"
    assert "<#" not in texts(blocks) and "https://" not in texts(blocks)
    assert_slack_accepts(blocks)


def test_a_card_with_red_flags_gaps_and_an_estimate_is_accepted() -> None:
    report = risky_report(
        status="IN_PROGRESS",
        estimated_time="2 days",
        dependencies_handoffs=[{"kind": "needed_from_others", "description": "DB credentials"}],
    )
    blocks = build_report_blocks(
        report,
        make_task(TaskStatus.IN_PROGRESS),
        None,
        gaps=["risk_assessment had no red flag"],
        moves=ALL_MOVES,
    )
    shown = texts(blocks)
    assert "Risk Assessment 4/9" in shown and "Scalability &amp; Performance 5/9" in shown
    assert "*Estimated Time:* 2 days" in shown and "Report gaps" in shown
    assert_slack_accepts(blocks)


# --- the card's thread lines ------------------------------------------------------------------


def test_the_first_report_line() -> None:
    line = build_card_line(make_task(), None, make_report(), "design the payments API")
    assert line == "T-7: ✅ COMPLETED · 1 new deliverable · asked: “design the payments API”"


def test_the_first_report_line_with_flags_and_an_estimate() -> None:
    current = risky_report(status="IN_PROGRESS", estimated_time="2 days")
    line = build_card_line(make_task(), None, current, "go")
    assert line == (
        "T-7: ⏳ IN PROGRESS · 1 new deliverable · 2 new red flags · estimate 2 days · asked: “go”"
    )


def test_a_later_line_says_what_changed() -> None:
    previous = risky_report(
        status="IN_PROGRESS",
        estimated_time="2 days",
        key_deliverables=[{"kind": "system", "description": "Payments API design"}],
    )
    current = make_report(
        key_deliverables=[
            {"kind": "system", "description": "Payments API design"},
            {"kind": "api_integration", "description": "Webhook contract"},
            {"kind": "data_storage", "description": "Ledger schema"},
        ],
        estimated_time="2 days",
    )
    line = build_card_line(make_task(), previous, current, "finish it")
    assert line == (
        "T-7: ⏳ IN PROGRESS → ✅ COMPLETED · 2 new deliverables · red flags cleared"
        " · asked: “finish it”"
    )


def test_a_later_line_with_one_flag_cleared_and_a_new_estimate() -> None:
    one_flag = {
        "self_assessment": {
            "probability_of_success": 8,
            "implementation_feasibility": 7,
            "quality_completeness": 7,
            "risk_assessment": 4,
            "alignment_value": 9,
        },
        "red_flags": [LOW_RISK_FLAG],
    }
    previous = make_report(status="IN_PROGRESS", estimated_time="2 days", **one_flag)
    current = make_report(status="IN_PROGRESS", estimated_time="1 day")
    line = build_card_line(make_task(), previous, current, "more")
    assert line == "T-7: ⏳ IN PROGRESS · red flag cleared · estimate 1 day · asked: “more”"
    # One flag then, two now: one new; the same estimate is not repeated.
    line = build_card_line(
        make_task(), previous, risky_report(status="IN_PROGRESS", estimated_time="2 days"), "x"
    )
    assert line == "T-7: ⏳ IN PROGRESS · 1 new red flag · asked: “x”"


def test_move_lines() -> None:
    task = make_task()
    assert build_move_line(task, event(kind="acknowledged")) == (
        ":heavy_check_mark: <@U0BOB> acknowledged T-7's report"
    )
    assert build_move_line(task, event(to_status=TaskStatus.BLOCKED, note="waiting on DB")) == (
        ":no_entry: <@U0BOB> marked T-7 blocked: waiting on DB"
    )
    assert build_move_line(task, event(to_status=TaskStatus.BLOCKED)) == (
        ":no_entry: <@U0BOB> marked T-7 blocked"
    )
    assert build_move_line(task, event(to_status=TaskStatus.COMPLETED)) == (
        ":white_check_mark: <@U0BOB> marked T-7 done"
    )
    assert build_move_line(
        task, event(to_status=TaskStatus.QUEUED, note="reopened: rollback is missing")
    ) == (":leftwards_arrow_with_hook: <@U0BOB> reopened T-7: rollback is missing")
    assert build_move_line(task, event(to_status=TaskStatus.QUEUED, note="reopened")) == (
        ":leftwards_arrow_with_hook: <@U0BOB> reopened T-7"
    )


# --- the summary under an answer --------------------------------------------------------------


def test_summary_text_in_a_channel() -> None:
    text = summary_text(make_report(), coordination="C0PM", private=False, gaps=[])
    assert text == "Self-assessment 8·8·7·7·9 · no red flags · report in <#C0PM>"


def test_summary_text_counts_flags_and_gaps() -> None:
    one = make_report(
        self_assessment={
            "probability_of_success": 8,
            "implementation_feasibility": 7,
            "quality_completeness": 7,
            "risk_assessment": 4,
            "alignment_value": 9,
        },
        red_flags=[LOW_RISK_FLAG],
    )
    assert summary_text(one, coordination=None, private=False, gaps=["a"]) == (
        "Self-assessment 8·7·7·4·9 · 1 red flag · :warning: 1 report gap"
    )
    assert summary_text(risky_report(), coordination="C0PM", private=False, gaps=["a", "b"]) == (
        "Self-assessment 8·7·7·4·9 · 2 red flags · :warning: 2 report gaps · report in <#C0PM>"
    )


def test_summary_text_of_a_private_task_names_no_channel() -> None:
    text = summary_text(make_report(), coordination="C0PM", private=True, gaps=[])
    assert text == (
        "Self-assessment 8·8·7·7·9 · no red flags · :lock: only you can see this task until "
        "you share it"
    )
    assert "<#" not in text


@pytest.mark.parametrize(
    ("visibility", "coordination", "expected"),
    [
        (Visibility.CHANNEL, "C0PM", [ACTION_DETAILS]),
        (Visibility.SHARED, "C0PM", [ACTION_DETAILS]),
        (Visibility.PRIVATE, "C0PM", [ACTION_DETAILS, ACTION_SHARE]),
        (Visibility.PRIVATE, None, [ACTION_DETAILS]),
    ],
)
def test_summary_blocks_share_only_a_private_task_with_somewhere_to_share(
    visibility: Visibility, coordination: str | None, expected: list[str]
) -> None:
    blocks = build_summary_blocks(
        make_report(),
        task=make_task(visibility=visibility),
        turn_id=42,
        coordination=coordination,
        gaps=["a gap"],
    )
    assert action_ids(blocks) == expected
    values = [element["value"] for element in blocks[-1]["elements"]]
    assert values == ["42", "7"][: len(expected)]
    assert_slack_accepts(blocks)


def test_feedback_and_working_blocks() -> None:
    feedback = feedback_block(42)
    assert feedback["block_id"] == "feedback:42"
    (element,) = feedback["elements"]
    assert element["action_id"] == ACTION_FEEDBACK
    assert element["positive_button"]["value"] == "good"
    assert element["negative_button"]["value"] == "bad"
    assert_slack_accepts([feedback])
    working = build_working_blocks(42)
    assert working[0]["accessory"]["action_id"] == ACTION_STOP
    assert working[0]["accessory"]["value"] == "42"
    assert_slack_accepts(working)


# --- modals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gaps", [[], ["risk_assessment had no red flag"]])
def test_the_details_modal_is_accepted(gaps: list[str]) -> None:
    for report in (make_report(), risky_report()):
        view = build_details_modal(report, make_task(), gaps)
        assert view_errors(view) == []


def test_the_details_modal_lists_pm_only_flags_once() -> None:
    view = build_details_modal(risky_report(), make_task(), [])
    shown = texts(view["blocks"])
    assert shown.count("Scalability &amp; Performance 5/9") == 1
    assert shown.count("Risk Assessment 4/9:") == 1  # in the matrix, not again under PM scores


def test_the_reopen_modal_is_accepted() -> None:
    assert view_errors(build_reopen_modal(make_task(), ClickOrigin())) == []
    origin = ClickOrigin(channel_id="C1", message_ts="2.0", response_url="https://x.example/r")
    assert view_errors(build_reopen_modal(make_task(), origin)) == []


# --- CompletionReport views -------------------------------------------------------------------


def test_both_views_show_the_same_shared_scores() -> None:
    report = risky_report()
    pm, own = dict(report.pm_view()), dict(report.self_view())
    assert list(pm) == list(PM_AXES.values()) and list(own) == list(SELF_AXES.values())
    for label in ("Implementation Feasibility", "Risk Assessment"):
        assert pm[label] == own[label]
    assert pm["Risk Assessment"] == 4 and pm["Implementation Feasibility"] == 7


def test_flags_in_a_view() -> None:
    report = risky_report()
    assert [flag.axis for flag in report.flags_in(PM_AXES)] == [
        ScoreAxis.RISK_ASSESSMENT,
        ScoreAxis.SCALABILITY_PERFORMANCE,
    ]
    assert [flag.axis for flag in report.flags_in(SELF_AXES)] == [ScoreAxis.RISK_ASSESSMENT]
    assert make_report().flags_in(PM_AXES) == []


# --- ratings ----------------------------------------------------------------------------------


def test_the_standup_usage_line_shows_ratings() -> None:
    usage = UsageSummary(
        rows=[UsageRow("engineer", "m", 3, 1, 2, 3, 4, 0, 1.5)], ratings={"good": 12, "bad": 2}
    )
    digest = StandupDigest(
        since=NOW,
        until=NOW,
        completed=[],
        in_progress=[],
        blocked=[],
        red_flags=[],
        handoffs=[],
        usage=usage,
        limit=20,
    )
    line = usage_line(StandupView(digest=digest, timezone=ZoneInfo("UTC"), day=NOW))
    assert "answers rated: 12 👍 2 👎" in line
    unrated = StandupDigest(
        since=NOW,
        until=NOW,
        completed=[],
        in_progress=[],
        blocked=[],
        red_flags=[],
        handoffs=[],
        usage=UsageSummary(rows=usage.rows),
        limit=20,
    )
    assert "rated" not in usage_line(StandupView(digest=unrated, timezone=ZoneInfo("UTC"), day=NOW))


def test_ratings_phrase() -> None:
    assert ratings_phrase({}) is None
    assert ratings_phrase({"good": 1}) == "answers rated: 1 👍 0 👎"
    assert ratings_phrase({"bad": 3}) == "answers rated: 0 👍 3 👎"
