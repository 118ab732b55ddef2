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

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.reports import CompletionReport
from bot.core.mrkdwn import decode_slack_text
from bot.slack.blocks.home import HomeBoard, build_home_view
from bot.slack.blocks.modal import ClickOrigin, build_blocked_modal
from bot.slack.blocks.pm import build_task_detail_blocks, build_task_list_blocks
from bot.slack.blocks.report import build_report_blocks
from bot.slack.blocks.standup import StandupView, build_standup_blocks
from bot.slack.events import parse_mention
from storage.models import Report, Task, TaskStatus
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


def assert_shown_as_written(rendered: Any, written: str) -> None:
    seen: list[str] = []
    for kind, text in texts(rendered):
        if kind == "plain_text":
            seen += re.findall(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), text)
            continue
        for entity in re.finditer(r"&[^&\s]{0,5}", text):
            assert ENTITY.match(entity.group(0)), f"a broken entity in {text!r}"
        assert not MASS_MENTION.search(text), f"a live channel-wide mention in {text!r}"
        seen += re.findall(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), shown(text))
    assert seen, f"the text is not shown anywhere in {rendered!r}"
    for each in seen:
        # Neutralised mass mentions carry an invisible word joiner; nothing else differs.
        assert each.replace("\u2060", "") == written


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
