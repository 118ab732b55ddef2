"""The Block Kit pieces every surface uses: blocks, limits, times, task lines and score trees."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from agents.reports import RED_FLAG_BELOW, CompletionReport
from bot.core.mrkdwn import clip, escape_mrkdwn, one_line
from storage.models import Report, Task, TaskStatus
from storage.queries import UsageSummary
from storage.tasks import describe_status

Block = dict[str, Any]
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 3000
HEADER_LIMIT = 150
MESSAGE_BLOCK_LIMIT = 50
HOME_BLOCK_LIMIT = 100

STATUS_ICON: dict[TaskStatus, str] = {
    TaskStatus.QUEUED: ":inbox_tray:",
    TaskStatus.WORKING: ":gear:",
    TaskStatus.IN_PROGRESS: ":hourglass_flowing_sand:",
    TaskStatus.BLOCKED: ":no_entry:",
    TaskStatus.COMPLETED: ":white_check_mark:",
    TaskStatus.FAILED: ":x:",
}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, CONTEXT_LIMIT)}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_LIMIT)}}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> Block:
    block: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        block["style"] = style
    return block


def fit_blocks(blocks: list[Block], limit: int) -> list[Block]:
    """Keep within Slack's block limit, saying that something was left out."""
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], context("_…and more than fits here._")]


def plain_fallback(blocks: Sequence[Block], limit: int = 3000) -> str:
    """The notification text for a set of blocks: their first section's text."""
    for block in blocks:
        text = (block.get("text") or {}).get("text") if block.get("type") == "section" else None
        if text:
            return str(text)[:limit]
    return "pmteam"


def when(moment: datetime) -> str:
    """A time Slack shows in each reader's own time zone (the fallback is UTC)."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def status_label(status: str) -> str:
    try:
        known = TaskStatus(status)
    except ValueError:
        return f":grey_question: {escape_mrkdwn(status)}"
    return f"{STATUS_ICON[known]} {describe_status(known)}"


def task_line(task: Task, *, show_requester: bool = True) -> str:
    who = f" · <@{task.requester_id}>" if show_requester else ""
    return (
        f"*{task.ref}* {status_label(task.status)} — {escape_mrkdwn(one_line(task.title, 120))}"
        f"{who} · <#{task.channel_id}> · {when(task.updated_at)}"
    )


def score_tree(items: Sequence[tuple[str, int]]) -> str:
    """Scores as a tree, one line each, a red-flag score in bold with a warning."""
    lines = []
    for index, (label, score) in enumerate(items):
        branch = "└──" if index == len(items) - 1 else "├──"
        value = f"*{score}/9* :warning:" if score < RED_FLAG_BELOW else f"{score}/9"
        lines.append(f"`{branch}` {escape_mrkdwn(label)}: {value}")
    return "\n".join(lines)


def stored_report(report: Report) -> CompletionReport | None:
    """The stored report, read leniently: one kept with gaps still renders."""
    try:
        return CompletionReport.model_validate(report.data, context={"gaps": []})
    except ValidationError:
        return None


def build_counts_fields(counts: dict[TaskStatus, int]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"{status_label(status)}\n*{counts.get(status, 0):,}*"}
            for status in TaskStatus
        ],
    }


def usage_fields(usage: UsageSummary) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"*Tokens*\n{usage.tokens:,}"},
            {"type": "mrkdwn", "text": f"*Cache share*\n{usage.cache_share:.0%}"},
            {"type": "mrkdwn", "text": f"*Web searches*\n{usage.web_searches:,}"},
            {"type": "mrkdwn", "text": f"*Cost*\n${usage.cost_usd:,.2f}"},
        ],
    }
