"""Block Kit builders: pure functions from domain data to Slack blocks (tested without Slack)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.reports import (
    PM_AXES,
    RED_FLAG_BELOW,
    SELF_AXES,
    CompletionReport,
    render_pm_report,
    render_self_assessment,
    status_line,
)
from bot.core.mrkdwn import neutralise_mentions
from storage.models import Task

Block = dict[str, Any]
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
REPORT_HEADER = "PROJECT MANAGER REPORT - Backend Engineer Agent"
MAX_SOURCES = 8
_KIND = {
    "system": "Systems built",
    "api_integration": "API integrations",
    "data_storage": "Data/storage",
    "needed_from_others": "Needed from others",
    "infrastructure_blocker": "Infrastructure blocker",
    "integration_endpoint_ready": "Integration endpoint ready",
}

# Report buttons; their handlers live with the /pm command (action ids are the contract).
ACTION_ACKNOWLEDGE = "task_acknowledge"
ACTION_MARK_BLOCKED = "task_mark_blocked"
ACTION_MARK_DONE = "task_mark_done"
ACTION_REOPEN = "task_reopen"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _escape(text: str) -> str:
    """Model text inside mrkdwn: no control characters for links/mentions, no mass pings."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return neutralise_mentions(text)


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, 3000)}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, HEADER_LIMIT)}}


def _score_tree(items: Sequence[tuple[str, int]]) -> str:
    lines = []
    for index, (label, score) in enumerate(items):
        branch = "└──" if index == len(items) - 1 else "├──"
        value = f"*{score}/9*  :warning:" if score < RED_FLAG_BELOW else f"{score}/9"
        lines.append(f"`{branch}` {label}: {value}")
    return "\n".join(lines)


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"• {_escape(item)}" for item in items) if items else "• none"


def build_report_blocks(
    report: CompletionReport,
    task: Task,
    permalink: str | None,
    *,
    gaps: Sequence[str] = (),
) -> list[Block]:
    """The PM report for the coordination channel, in the DESIGN §3 layout."""
    pm_scores = [(label, getattr(report.pm_scores, key)) for key, label in PM_AXES.items()]
    blocks: list[Block] = [
        header(REPORT_HEADER),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Task:*\n{_clip(_escape(report.task), 1900)}"},
                {"type": "mrkdwn", "text": f"*Status:*\n{status_line(report.status)}"},
            ],
        },
        section(f"*Self-Assessment Scores (1-9):*\n{_score_tree(pm_scores)}"),
    ]
    if report.red_flags:
        scores = dict(report.scores())
        flags = [
            f":red_circle: *{flag.axis.label} {scores[flag.axis]}/9* — {_escape(flag.explanation)}"
            f"\n      _Mitigation:_ {_escape(flag.mitigation)}"
            for flag in report.red_flags
        ]
        blocks.append(section("*Red flags:*\n" + "\n".join(flags)))
    deliverables = [f"{_KIND[d.kind]}: {d.description}" for d in report.key_deliverables]
    blocks.append(section(f"*Key Deliverables:*\n{_bullets(deliverables)}"))
    handoffs = [f"{_KIND[h.kind]}: {h.description}" for h in report.dependencies_handoffs]
    blocks.append(section(f"*Dependencies/Handoffs:*\n{_bullets(handoffs)}"))
    if report.estimated_time:
        blocks.append(section(f"*Estimated Time:* {_escape(report.estimated_time)}"))
    if gaps:
        blocks.append(section(":warning: *Report gaps:*\n" + _bullets(list(gaps))))
    where = f"<{permalink}|View the thread>" if permalink else "thread link unavailable"
    blocks.append(
        context(
            f"{task.ref} · requested by <@{task.requester_id}> in <#{task.channel_id}> · {where}"
        )
    )
    blocks.append(build_task_actions(task))
    return blocks


def build_task_actions(task: Task) -> Block:
    value = str(task.id)
    return {
        "type": "actions",
        "block_id": f"task_actions:{task.id}",
        "elements": [
            _button("Acknowledge", ACTION_ACKNOWLEDGE, value),
            _button("Mark blocked", ACTION_MARK_BLOCKED, value),
            _button("Mark done", ACTION_MARK_DONE, value, style="primary"),
            _button("Reopen", ACTION_REOPEN, value),
        ],
    }


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def report_fallback_text(report: CompletionReport, task: Task, gaps: Sequence[str] = ()) -> str:
    """The notification text (and what screen readers get): the plain-text layout."""
    return neutralise_mentions(f"{task.ref} — {render_pm_report(report, gaps)}")[:3900]


def build_matrix_blocks(report: CompletionReport, *, gaps: Sequence[str] = ()) -> list[Block]:
    """The self-assessment matrix for the task's thread."""
    scores = [(label, getattr(report.self_assessment, key)) for key, label in SELF_AXES.items()]
    blocks: list[Block] = [section(f"*SELF-ASSESSMENT SCORES:*\n{_score_tree(scores)}")]
    all_scores = dict(report.scores())
    flags = [
        f"• *{flag.axis.label} {all_scores[flag.axis]}/9:* {_escape(flag.explanation)} "
        f"_Mitigation:_ {_escape(flag.mitigation)}"
        for flag in report.red_flags
    ]
    flags += [f"• :warning: gap: {_escape(gap)}" for gap in gaps]
    blocks.append(
        section("*RED FLAGS:*\n" + ("\n".join(flags) if flags else "none (every score ≥ 6)"))
    )
    notes = _escape(report.confidence_notes.strip()) or "—"
    blocks.append(section(f"*CONFIDENCE NOTES:* {notes}"))
    blocks.append(context(f"Status: {status_line(report.status)}"))
    return blocks


def matrix_fallback_text(report: CompletionReport, gaps: Sequence[str] = ()) -> str:
    return neutralise_mentions(render_self_assessment(report, gaps))[:3900]


def build_sources_blocks(sources: Sequence[tuple[str, str]], *, live: bool = True) -> list[Block]:
    """Research sources under an answer: (url, title) pairs, deduplicated, at most MAX_SOURCES."""
    seen: set[str] = set()
    links: list[str] = []
    for url, title in sources:
        if not url.startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        label = _escape(title or url).replace("|", "¦")
        links.append(f"<{url}|{_clip(label, 80)}>")
    if not links:
        if not live:
            return [context(":mag: Research: no live sources (web search is off)")]
        return []
    shown = links[:MAX_SOURCES]
    more = f" and {len(links) - MAX_SOURCES} more" if len(links) > MAX_SOURCES else ""
    return [context(":mag: *Sources:* " + " · ".join(shown) + more)]


def build_failure_text(reason: str) -> str:
    return (
        f":x: I couldn't finish this: {reason}\n"
        "Mention me again in this thread to retry; everything said so far is kept."
    )
