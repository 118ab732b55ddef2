"""Block Kit for a task's report: the PM card, the thread's matrix, sources, and the buttons."""

from __future__ import annotations

from collections.abc import Sequence

from agents.reports import (
    KIND_LABELS,
    PM_AXES,
    SELF_AXES,
    CompletionReport,
    render_pm_report,
    render_self_assessment,
    status_line,
)
from bot.core.mrkdwn import clip, escape_mrkdwn, neutralise_mentions, one_line
from bot.slack.blocks.common import Block, button, context, header, score_tree, section
from storage.models import Task, TaskEvent, TaskStatus
from storage.tasks import BOT_ACTOR, describe_status

REPORT_HEADER = "PROJECT MANAGER REPORT - Backend Engineer Agent"
MAX_SOURCES = 8

# Report buttons; their handlers live with the /pm command (action ids are the contract).
ACTION_ACKNOWLEDGE = "task_acknowledge"
ACTION_MARK_BLOCKED = "task_mark_blocked"
ACTION_MARK_DONE = "task_mark_done"
ACTION_REOPEN = "task_reopen"


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"• {escape_mrkdwn(item)}" for item in items) if items else "• none"


def build_report_blocks(
    report: CompletionReport,
    task: Task,
    permalink: str | None,
    *,
    gaps: Sequence[str] = (),
) -> list[Block]:
    """The PM report for the coordination channel, in the DESIGN §3 layout."""
    pm_scores = report.pm_view()
    blocks: list[Block] = [
        header(REPORT_HEADER),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Task:*\n{clip(escape_mrkdwn(report.task), 1900)}"},
                {"type": "mrkdwn", "text": f"*Status:*\n{status_line(report.status)}"},
            ],
        },
        section(f"*Self-Assessment Scores (1-9):*\n{score_tree(pm_scores)}"),
    ]
    if pm_flags := report.flags_in(PM_AXES):
        flags = [
            f":red_circle: *{flag.axis.label} {report.score(flag.axis)}/9* — "
            f"{escape_mrkdwn(flag.explanation)}"
            f"\n      _Mitigation:_ {escape_mrkdwn(flag.mitigation)}"
            for flag in pm_flags
        ]
        blocks.append(section("*Red flags:*\n" + "\n".join(flags)))
    deliverables = [f"{KIND_LABELS[d.kind]}: {d.description}" for d in report.key_deliverables]
    blocks.append(section(f"*Key Deliverables:*\n{_bullets(deliverables)}"))
    handoffs = [f"{KIND_LABELS[h.kind]}: {h.description}" for h in report.dependencies_handoffs]
    blocks.append(section(f"*Dependencies/Handoffs:*\n{_bullets(handoffs)}"))
    if report.estimated_time:
        blocks.append(section(f"*Estimated Time:* {escape_mrkdwn(report.estimated_time)}"))
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
            button("Acknowledge", ACTION_ACKNOWLEDGE, value),
            button("Mark blocked", ACTION_MARK_BLOCKED, value),
            button("Mark done", ACTION_MARK_DONE, value, style="primary"),
            button("Reopen", ACTION_REOPEN, value),
        ],
    }


def report_fallback_text(report: CompletionReport, task: Task, gaps: Sequence[str] = ()) -> str:
    """The notification text (and what screen readers get): the plain-text layout."""
    return neutralise_mentions(f"{task.ref} — {render_pm_report(report, gaps)}")[:3900]


def build_matrix_blocks(report: CompletionReport, *, gaps: Sequence[str] = ()) -> list[Block]:
    """The self-assessment matrix for the task's thread."""
    blocks: list[Block] = [section(f"*SELF-ASSESSMENT SCORES:*\n{score_tree(report.self_view())}")]
    flags = [
        f"• *{flag.axis.label} {report.score(flag.axis)}/9:* {escape_mrkdwn(flag.explanation)} "
        f"_Mitigation:_ {escape_mrkdwn(flag.mitigation)}"
        for flag in report.flags_in(SELF_AXES)
    ]
    flags += [f"• :warning: gap: {escape_mrkdwn(gap)}" for gap in gaps]
    blocks.append(
        section("*RED FLAGS:*\n" + ("\n".join(flags) if flags else "none (every score ≥ 6)"))
    )
    notes = escape_mrkdwn(report.confidence_notes.strip()) or "—"
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
        label = escape_mrkdwn(title or url).replace("|", "¦")
        links.append(f"<{url}|{clip(label, 80)}>")
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


def _activity_phrase(event: TaskEvent) -> str:
    who = f"<@{event.actor}>"
    if event.kind == "acknowledged":
        return f":heavy_check_mark: Acknowledged by {who}"
    if event.to_status == TaskStatus.BLOCKED:
        reason = f": _{escape_mrkdwn(one_line(event.note, 200))}_" if event.note else ""
        return f":no_entry: Marked blocked by {who}{reason}"
    if event.to_status == TaskStatus.COMPLETED:
        return f":white_check_mark: Marked done by {who}"
    if event.to_status == TaskStatus.QUEUED:
        verb = "Reopened" if event.note == "reopened" else "Follow-up asked"
        return f":leftwards_arrow_with_hook: {verb} by {who}"
    return f"{describe_status(event.to_status or event.kind)} by {who}"


def build_activity_block(task: Task, events: Sequence[TaskEvent]) -> Block | None:
    """What people did with a task since its report, for the report message (newest last)."""
    people = [e for e in events if e.actor != BOT_ACTOR][-8:]
    if not people:
        return None
    block = context(" · ".join(_activity_phrase(e) for e in people))
    block["block_id"] = f"task_activity:{task.id}"
    return block


def with_activity(blocks: Sequence[Block], task: Task, activity: Block | None) -> list[Block]:
    """The report's blocks with its activity line (re)placed just above the buttons."""
    kept = [b for b in blocks if b.get("block_id") != f"task_activity:{task.id}"]
    if activity is None:
        return kept
    at = next(
        (i for i, b in enumerate(kept) if str(b.get("block_id", "")).startswith("task_actions:")),
        len(kept),
    )
    return [*kept[:at], activity, *kept[at:]]
