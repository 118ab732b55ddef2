"""Text in, text out: whatever a person (or the model) writes, every surface shows the same
characters, escaped once, with no broken entity and no live channel-wide mention.

Slack sends `&`, `<` and `>` escaped; intake decodes them once, the database keeps plain text,
and each renderer escapes once. `shown` below is what Slack displays of mrkdwn."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.reports import CompletionReport
from bot.core.mrkdwn import decode_slack_text
from bot.core.task_rules import REOPENED_NOTE, state_moves
from bot.slack.blocks.home import HomeBoard, build_home_view
from bot.slack.blocks.modal import ClickOrigin, build_blocked_modal, build_reopen_modal
from bot.slack.blocks.pm import build_task_detail_blocks, build_task_list_blocks
from bot.slack.blocks.report import (
    build_card_line,
    build_details_modal,
    build_move_line,
    build_report_blocks,
    build_summary_blocks,
    card_status,
    summary_text,
)
from bot.slack.blocks.standup import StandupView, build_standup_blocks
from bot.slack.events import parse_mention
from storage.models import (
    Rating,
    Report,
    ReportKind,
    Task,
    TaskEvent,
    TaskStatus,
    Turn,
    TurnStatus,
    Visibility,
)
from storage.queries import ListKind, TaskDetail, TaskFilter, UsageSummary
from storage.standups import StandupDigest
from tests.e2e.conftest import report_json

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
OPEN, CLOSE = "⟦", "⟧"  # around the text, to find it again in what is shown
ENTITY = re.compile(r"&(amp|lt|gt);")
MASS_MENTION = re.compile(
    r"<!(channel|here|everyone|subteam)|(?<![\w`\u2060])@(channel|here|everyone)\b"
)

# What people type: the characters Slack escapes, entity look-alikes, mass mentions, markup.
pieces = st.sampled_from(
    [
        "&",
        "<",
        ">",
        "&gt;",
        "&amp;",
        "&lt",
        ">50k",
        "a&b",
        "<x|y>",
        "<!channel>",
        "<!here>",
        "@here",
        "@everyone",
        "<!subteam^S1|@devs>",
        "<@U0BOB>",
        "<#C0ENG|eng>",
        "`code`",
        "*b*",
    ]
)
words = st.text(alphabet="abcxyz019 -.,;:'\"()[]{}/?=+", min_size=1, max_size=6)
user_text = (
    st.lists(st.one_of(pieces, words), min_size=1, max_size=8)
    .map("".join)
    .filter(lambda text: text.strip() == text and "  " not in text)
)


def shown(mrkdwn: str) -> str:
    """What Slack displays for mrkdwn: its three entities decoded, once."""
    return ENTITY.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m.group(1)], mrkdwn)


def texts(value: Any) -> list[tuple[str, str]]:
    """Every (type, text) of the Block Kit `value`: mrkdwn or plain_text."""
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                found.append((node["type"], node["text"]))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(value)
    return found


MARKED = re.compile(re.escape(OPEN) + r"(.*?)(" + re.escape(CLOSE) + r"|…)")


def mrkdwn(text: str) -> dict[str, str]:
    """A plain mrkdwn string (a message's text, a thread line) as the text object it is."""
    return {"type": "mrkdwn", "text": text}


def marked_spans(rendered: Any) -> list[tuple[str, bool]]:
    """Every marked text Slack shows in `rendered`, and whether it was cut (ends in "…"),
    once each mrkdwn text is checked for broken entities and live channel-wide mentions."""
    seen: list[tuple[str, bool]] = []
    for kind, text in texts(rendered):
        if kind == "mrkdwn":
            for entity in re.finditer(r"&[^&\s]{0,5}", text):
                assert ENTITY.match(entity.group(0)), f"a broken entity in {text!r}"
            assert not MASS_MENTION.search(text), f"a live channel-wide mention in {text!r}"
            text = shown(text)
        # Neutralised mass mentions carry an invisible word joiner; nothing else differs.
        seen += [
            (m.group(1).replace("\u2060", ""), m.group(2) == "…") for m in MARKED.finditer(text)
        ]
    return seen


def assert_shown_as_written(rendered: Any, written: str, *, cut_at: int | None = None) -> None:
    """`written` (between the markers) is shown exactly; where a renderer cuts its input at
    `cut_at` characters, a longer text may show as its own beginning and "…" instead."""
    seen = marked_spans(rendered)
    assert seen, f"the text is not shown anywhere in {rendered!r}"
    marked = f"{OPEN}{written}{CLOSE}"
    for each, cut in seen:
        if not cut:
            assert each == written
            continue
        assert cut_at is not None and len(marked) > cut_at, f"{each!r} cut, {marked!r} fits"
        assert written.startswith(each) and len(f"{OPEN}{each}…") <= cut_at


def task_titled(title: str, status: TaskStatus = TaskStatus.BLOCKED) -> Task:
    return Task(
        id=7,
        team_id="T1",
        channel_id="C1",
        thread_ts="1.1",
        requester_id="U0ALICE",
        title=title,
        request_text=title,
        status=status,
        status_reason=title,
        created_at=NOW,
        updated_at=NOW,
    )


def stored(report: CompletionReport) -> Report:
    data = json.loads(report.model_dump_json())
    return Report(id=1, task_id=7, turn_id=1, status=data["status"], data=data, created_at=NOW)


def report_saying(
    marked: str, flagged: tuple[str, ...] = ("risk_assessment",), **overrides: Any
) -> CompletionReport:
    """A report whose every free text is `marked`, scored 4/9 (with a red flag) on `flagged`.
    Risk Assessment is in both views; the test below flags axes whose label has an `&`."""
    pm_scores = {
        "system_architecture_design": 8,
        "scalability_performance": 7,
        "integration_reliability": 8,
    }
    self_assessment = {
        "probability_of_success": 8,
        "implementation_feasibility": 8,
        "quality_completeness": 7,
        "risk_assessment": 7,
        "alignment_value": 9,
    }
    for axis in flagged:
        (pm_scores if axis in pm_scores else self_assessment)[axis] = 4
    data = report_json(
        task=marked,
        status="IN_PROGRESS",
        pm_scores=pm_scores,
        self_assessment=self_assessment,
        red_flags=[{"axis": axis, "explanation": marked, "mitigation": marked} for axis in flagged],
        confidence_notes=marked,
        key_deliverables=[{"kind": "system", "description": marked}],
        dependencies_handoffs=[{"kind": "needed_from_others", "description": marked}],
        estimated_time=marked,
    )
    data.update(overrides)
    return CompletionReport.model_validate(data, context={"gaps": []})


def turn_asking(text: str, seq: int, **fields: Any) -> Turn:
    return Turn(
        id=seq,
        task_id=7,
        seq=seq,
        team_id="T1",
        channel_id="C1",
        message_ts=f"1.{seq}",
        user_id="U0BOB",
        text=text,
        created_at=NOW,
        **{"status": TurnStatus.DONE, **fields},
    )


@given(user_text)
def test_intake_decodes_slack_escaping_once(written: str) -> None:
    # Slack escapes only the three characters; its own markup (<@U…>, <!here>) arrives as is.
    escaped = written
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        escaped = escaped.replace(char, entity)
    markup = re.compile(r"&lt;([@#!][^&]*?)&gt;")
    escaped = markup.sub(r"<\1>", escaped)
    event = {"type": "app_mention", "user": "U0ALICE", "channel": "C1", "ts": "1.1"}
    message = parse_mention({"event": {**event, "text": f"<@U0BOT> {escaped}"}}, "U0BOT")
    assert message is not None and message.text == decode_slack_text(escaped)


@pytest.mark.reliability(
    "Hostile text (entities, markup, mass mentions) on every surface", kind="attack"
)
@settings(max_examples=60, deadline=None)
@given(user_text)
def test_every_surface_shows_what_was_written(written: str) -> None:
    marked = f"{OPEN}{written}{CLOSE}"
    task = task_titled(marked)
    report = CompletionReport.model_validate(report_json(task=marked), context={"gaps": []})

    assert_shown_as_written(build_report_blocks(report, task, None), written)
    assert_shown_as_written(
        build_task_list_blocks(TaskFilter(kind=ListKind.OPEN), [task], next_before_id=None),
        written,
    )
    detail = TaskDetail(
        task=task,
        events=[],
        turns=[],
        last_report=stored(report),
        research=[],
        cost_usd=0,
        tokens=0,
    )
    assert_shown_as_written(build_task_detail_blocks(detail, None), written)
    board = HomeBoard(
        counts={TaskStatus.BLOCKED: 1},
        blocked=[task],
        reports=[(stored(report), task)],
        red_flags=[],
        usage=UsageSummary(),
        week_start=NOW,
        built_at=NOW,
    )
    assert_shown_as_written(
        build_home_view(board, [task], acknowledge_action="ack", reopen_action="reopen"), written
    )
    digest = StandupDigest(
        since=NOW,
        until=NOW,
        completed=[],
        in_progress=[],
        blocked=[(task, stored(report))],
        red_flags=[],
        handoffs=[],
        usage=UsageSummary(),
        limit=20,
    )
    view = StandupView(digest=digest, timezone=ZoneInfo("UTC"), day=NOW)
    assert_shown_as_written(build_standup_blocks(view), written)
    assert_shown_as_written(build_blocked_modal(task, ClickOrigin(channel_id="C1")), written)


@settings(max_examples=60, deadline=None)
@given(user_text, st.sampled_from(list(TaskStatus)))
def test_a_shared_tasks_card_shows_what_was_written(written: str, status: TaskStatus) -> None:
    marked = f"{OPEN}{written}{CLOSE}"
    task = task_titled(marked, status)
    task.visibility = Visibility.SHARED
    report = report_saying(marked)
    blocks = build_report_blocks(
        report,
        task,
        None,
        gaps=[marked],
        status=card_status(task, report),
        moves=state_moves(task, has_report=True, acknowledged=False),
    )
    assert "asked privately by <@U0ALICE>" in json.dumps(blocks)
    assert_shown_as_written(blocks, written)


@settings(max_examples=60, deadline=None)
@given(user_text, st.sampled_from(list(Visibility)))
def test_the_summary_under_an_answer_counts_gaps_and_details_show_them(
    written: str, visibility: Visibility
) -> None:
    marked = f"{OPEN}{written}{CLOSE}"
    task = task_titled(marked)
    task.visibility = visibility
    report = report_saying(marked)
    summary = build_summary_blocks(report, task=task, turn_id=3, coordination="C0PM", gaps=[marked])
    line = summary_text(
        report, coordination="C0PM", private=visibility == Visibility.PRIVATE, gaps=[marked]
    )
    # The line under an answer names how many gaps, never their text: that is in Details.
    assert marked_spans(summary) == [] and marked_spans(mrkdwn(line)) == []
    assert ":warning: 1 report gap" in line
    assert_shown_as_written(build_details_modal(report, task, [marked]), written)


@settings(max_examples=60, deadline=None)
@given(user_text)
def test_a_cards_thread_line_shows_what_was_asked_and_estimated(written: str) -> None:
    marked = f"{OPEN}{written}{CLOSE}"
    task = task_titled(marked, TaskStatus.IN_PROGRESS)
    previous = CompletionReport.model_validate(report_json(), context={"gaps": []})
    current = report_saying(marked)
    # The new estimate is cut at 60 characters, the follow-up quoted at 120.
    estimated = build_card_line(task, previous, current, "and the refunds?")
    assert_shown_as_written(mrkdwn(estimated), written, cut_at=60)
    asked = build_card_line(task, current, current, marked)
    assert_shown_as_written(mrkdwn(asked), written, cut_at=120)


@settings(max_examples=60, deadline=None)
@given(user_text)
def test_a_move_line_shows_the_reason_given(written: str) -> None:
    marked = f"{OPEN}{written}{CLOSE}"
    task = task_titled(marked)
    blocked = TaskEvent(
        id=1,
        task_id=7,
        kind="status",
        from_status=TaskStatus.IN_PROGRESS,
        to_status=TaskStatus.BLOCKED,
        actor="U0BOB",
        note=marked,
        created_at=NOW,
    )
    reopened = TaskEvent(
        id=2,
        task_id=7,
        kind="status",
        from_status=TaskStatus.BLOCKED,
        to_status=TaskStatus.QUEUED,
        actor="U0BOB",
        note=f"{REOPENED_NOTE}: {marked}",
        created_at=NOW,
    )
    assert_shown_as_written(mrkdwn(build_move_line(task, blocked)), written)
    assert_shown_as_written(mrkdwn(build_move_line(task, reopened)), written)
    assert_shown_as_written(build_reopen_modal(task, ClickOrigin(channel_id="C1")), written)


@settings(max_examples=60, deadline=None)
@given(user_text)
def test_a_tasks_detail_shows_its_history_turns_and_report_as_written(written: str) -> None:
    marked = f"{OPEN}{written}{CLOSE}"
    task = task_titled(marked)
    report = report_saying(marked)
    last = stored(report)
    last.gaps = [marked]
    events = [
        TaskEvent(
            id=1,
            task_id=7,
            kind="status",
            from_status=TaskStatus.IN_PROGRESS,
            to_status=TaskStatus.BLOCKED,
            actor="U0BOB",
            note=marked,
            created_at=NOW,
        ),
        TaskEvent(
            id=2,
            task_id=7,
            kind="status",
            from_status=TaskStatus.BLOCKED,
            to_status=TaskStatus.QUEUED,
            actor="U0BOB",
            note=f"{REOPENED_NOTE}: {marked}",
            created_at=NOW,
        ),
        TaskEvent(id=3, task_id=7, kind="acknowledged", actor="U0BOB", created_at=NOW),
    ]
    turns = [
        turn_asking("design it", 1),
        turn_asking("thanks!", 2),
        turn_asking("again", 3, status=TurnStatus.FAILED, failure_reason=marked),
    ]
    detail = TaskDetail(
        task=task,
        events=events,
        turns=turns,
        last_report=last,
        research=[],
        cost_usd=0,
        tokens=0,
        report_kinds={1: ReportKind.BACKEND_WORK, 2: ReportKind.CONVERSATION},
        ratings={Rating.GOOD: 2, Rating.BAD: 1},
    )
    moves = state_moves(task, has_report=True, acknowledged=False)
    assert_shown_as_written(build_task_detail_blocks(detail, None, moves), written)

    # A turn's text is quoted at 100 characters, an estimate (while in progress) at 100.
    task = task_titled(marked, TaskStatus.IN_PROGRESS)
    task.estimated_time = marked
    turns = [turn_asking(marked, 1), turn_asking(marked, 2)]
    detail = TaskDetail(
        task=task,
        events=[],
        turns=turns,
        last_report=None,
        research=[],
        cost_usd=0,
        tokens=0,
        report_kinds={2: ReportKind.CONVERSATION},
    )
    moves = state_moves(task, has_report=True, acknowledged=False)
    assert_shown_as_written(build_task_detail_blocks(detail, None, moves), written, cut_at=100)


# Four axes' labels have an `&` ("System Architecture & Design", "Scalability & Performance",
# "Integration & Reliability", "Quality & Completeness"): a red flag's line escapes it once,
# like the score tree above it.
@settings(max_examples=10, deadline=None)
@given(user_text)
def test_a_red_flag_on_an_axis_named_with_an_ampersand_shows_what_was_written(written: str) -> None:
    marked = f"{OPEN}{written}{CLOSE}"
    task = task_titled(marked)
    flagged = ("system_architecture_design", "quality_completeness", "risk_assessment")
    report = report_saying(marked, flagged=flagged)
    assert_shown_as_written(build_details_modal(report, task, []), written)
    assert_shown_as_written(build_report_blocks(report, task, None), written)
    detail = TaskDetail(
        task=task,
        events=[],
        turns=[],
        last_report=stored(report),
        research=[],
        cost_usd=0,
        tokens=0,
    )
    assert_shown_as_written(build_task_detail_blocks(detail, None), written)
    board = HomeBoard(
        counts={TaskStatus.BLOCKED: 1},
        blocked=[task],
        reports=[(stored(report), task)],
        red_flags=[(stored(report), task)],
        usage=UsageSummary(),
        week_start=NOW,
        built_at=NOW,
    )
    assert_shown_as_written(
        build_home_view(board, [task], acknowledge_action="ack", reopen_action="reopen"), written
    )
