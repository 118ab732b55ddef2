"""Block Kit for a task's report: the PM card, the thread's matrix, sources, and the buttons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.reports import (
    KIND_LABELS,
    PM_AXES,
    SELF_AXES,
    CompletionReport,
    RedFlag,
    ReportStatus,
    render_pm_report,
    status_line,
)
from bot.core.mrkdwn import clip, escape_mrkdwn, one_line, safe_model_markdown
from bot.core.task_rules import REOPENED_NOTE, TaskMove
from bot.slack.blocks.common import Block, button, context, header, score_tree, section
from bot.slack.blocks.handoffs import build_card_handoff_blocks
from storage.models import HandoffItem, Task, TaskEvent, TaskStatus, Visibility
from storage.tasks import BOT_ACTOR, describe_status

REPORT_HEADER = "PROJECT MANAGER REPORT - Backend Engineer Agent"
MAX_SOURCES = 8

# Report buttons; their handlers live with the /pm command (action ids are the contract).
ACTION_ACKNOWLEDGE = "task_acknowledge"
ACTION_MARK_BLOCKED = "task_mark_blocked"
ACTION_MARK_DONE = "task_mark_done"
ACTION_REOPEN = "task_reopen"
# Under an answer: the assessment in full, sharing a private task, 👍/👎; on a running turn: Stop.
ACTION_DETAILS = "turn_details"
ACTION_SHARE = "task_share"
ACTION_FEEDBACK = "answer_feedback"
ACTION_STOP = "turn_stop"
FEEDBACK_VALUES = ("good", "bad")

MOVE_BUTTONS: dict[TaskMove, tuple[str, str, str | None]] = {
    TaskMove.ACKNOWLEDGE: ("Acknowledge", ACTION_ACKNOWLEDGE, None),
    TaskMove.MARK_BLOCKED: ("Mark blocked", ACTION_MARK_BLOCKED, None),
    TaskMove.MARK_DONE: ("Mark done", ACTION_MARK_DONE, "primary"),
    TaskMove.REOPEN: ("Reopen", ACTION_REOPEN, None),
}
# What a card says of the task's status now: a task working again (a follow-up, a Reopen)
# is IN PROGRESS; a failed later turn leaves the last report's status.
CARD_STATUS: dict[str, ReportStatus] = {
    TaskStatus.COMPLETED: ReportStatus.COMPLETED,
    TaskStatus.IN_PROGRESS: ReportStatus.IN_PROGRESS,
    TaskStatus.BLOCKED: ReportStatus.BLOCKED,
    TaskStatus.QUEUED: ReportStatus.IN_PROGRESS,
    TaskStatus.WORKING: ReportStatus.IN_PROGRESS,
}


def card_status(task: Task, report: CompletionReport) -> ReportStatus:
    return CARD_STATUS.get(task.status, report.status)


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"• {escape_mrkdwn(item)}" for item in items) if items else "• none"


def research_line(requests: int, live_sources: int) -> str:
    """What backed this turn's work, from what happened (the stored research requests), never
    from the model's own words about it."""
    if requests == 0:
        return ":mag: Research: none for this turn"
    asked = f"{requests} request" + ("s" if requests != 1 else "")
    if live_sources == 0:
        return f":mag: Research: not validated against live sources ({asked})"
    found = f"{live_sources} live source" + ("s" if live_sources != 1 else "")
    return f":mag: Research: {found} ({asked})"


def build_report_blocks(
    report: CompletionReport,
    task: Task,
    permalink: str | None,
    *,
    gaps: Sequence[str] = (),
    status: ReportStatus | None = None,
    moves: Sequence[TaskMove] = (),
    research: str | None = None,
    handoffs: Sequence[HandoffItem] = (),
) -> list[Block]:
    """The task's card in the coordination channel, in the DESIGN §3 layout: the newest
    report's content, the task's `status` now, and the buttons for the `moves` it allows;
    `research` is the line saying what backed it (`research_line`); `handoffs` are the ones
    the task tracks, each shown with its owner and state."""
    pm_scores = report.pm_view()
    shown = status or report.status
    blocks: list[Block] = [
        header(REPORT_HEADER),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Task:*\n{clip(escape_mrkdwn(report.task), 1900)}"},
                {"type": "mrkdwn", "text": f"*Status:*\n{status_line(shown)}"},
            ],
        },
        section(f"*Self-Assessment Scores (1-9):*\n{score_tree(pm_scores)}"),
    ]
    if pm_flags := report.flags_in(PM_AXES):
        flags = [
            f":red_circle: *{escape_mrkdwn(flag.axis.label)} {report.score(flag.axis)}/9* — "
            f"{escape_mrkdwn(flag.explanation)}"
            f"\n      _Mitigation:_ {escape_mrkdwn(flag.mitigation)}"
            for flag in pm_flags
        ]
        blocks.append(section("*Red flags:*\n" + "\n".join(flags)))
    deliverables = [f"{KIND_LABELS[d.kind]}: {d.description}" for d in report.key_deliverables]
    blocks.append(section(f"*Key Deliverables:*\n{_bullets(deliverables)}"))
    tracked = {" ".join(h.description.split()).casefold() for h in handoffs}
    listed = [
        f"{KIND_LABELS[h.kind]}: {h.description}"
        for h in report.dependencies_handoffs
        if " ".join(h.description.split()).casefold() not in tracked
    ]
    if handoffs and not listed:
        blocks.append(section("*Dependencies/Handoffs:*"))
    else:
        blocks.append(section(f"*Dependencies/Handoffs:*\n{_bullets(listed)}"))
    blocks += build_card_handoff_blocks(handoffs)
    if report.estimated_time:
        blocks.append(section(f"*Estimated Time:* {escape_mrkdwn(report.estimated_time)}"))
    if gaps:
        blocks.append(section(":warning: *Report gaps:*\n" + _bullets(list(gaps))))
    if research:
        blocks.append(context(research))
    blocks.append(context(card_footer(task, permalink)))
    if task.status in (TaskStatus.QUEUED, TaskStatus.WORKING):
        blocks.append(
            context(
                ":hourglass_flowing_sand: Working on it; the buttons come back when it reports."
            )
        )
    actions = build_task_actions(task, moves)
    if actions is not None:
        blocks.append(actions)
    return blocks


def card_footer(task: Task, permalink: str | None) -> str:
    if task.visibility != Visibility.CHANNEL:
        # A DM is nobody else's to open: no channel name, no link.
        return f"{task.ref} · asked privately by <@{task.requester_id}>"
    where = f"<{permalink}|View the thread>" if permalink else "thread link unavailable"
    return f"{task.ref} · requested by <@{task.requester_id}> in <#{task.channel_id}> · {where}"


def build_task_actions(task: Task, moves: Sequence[TaskMove]) -> Block | None:
    """The buttons for the moves allowed now; None when there are none."""
    if not moves:
        return None
    value = str(task.id)
    elements = []
    for move in moves:
        label, action_id, style = MOVE_BUTTONS[move]
        elements.append(button(label, action_id, value, style=style))
    return {"type": "actions", "block_id": f"task_actions:{task.id}", "elements": elements}


def build_card_line(
    task: Task, previous: CompletionReport | None, current: CompletionReport, asked: str
) -> str:
    """The line a later turn adds in the card's thread: what changed since the card's last
    content ("T-3: ⏳ IN PROGRESS → ✅ COMPLETED · 2 new deliverables · red flag cleared")."""
    if previous is None or previous.status is current.status:
        head = f"{task.ref}: {status_line(current.status)}"
    else:
        head = f"{task.ref}: {status_line(previous.status)} → {status_line(current.status)}"
    parts = [head]
    known = {d.description for d in previous.key_deliverables} if previous else set()
    new = [d for d in current.key_deliverables if d.description not in known]
    if new:
        parts.append(f"{len(new)} new deliverable" + ("s" if len(new) > 1 else ""))
    before = previous.red_flag_count if previous else 0
    now = current.red_flag_count
    if before and not now:
        parts.append("red flag cleared" if before == 1 else "red flags cleared")
    elif now > before:
        parts.append(f"{now - before} new red flag" + ("s" if now - before > 1 else ""))
    if current.estimated_time and (
        previous is None or previous.estimated_time != current.estimated_time
    ):
        parts.append(f"estimate {escape_mrkdwn(one_line(current.estimated_time, 60))}")
    parts.append(f"asked: “{escape_mrkdwn(one_line(asked, 120))}”")
    return " · ".join(parts)


def build_move_line(task: Task, event: TaskEvent) -> str:
    """A person's move as a line in the card's thread (and, for Reopen, the task's)."""
    who = f"<@{event.actor}>"
    reason = f": {escape_mrkdwn(one_line(event.note, 300))}" if event.note else ""
    if event.kind == "acknowledged":
        return f":heavy_check_mark: {who} acknowledged {task.ref}'s report"
    if event.to_status == TaskStatus.BLOCKED:
        return f":no_entry: {who} marked {task.ref} blocked{reason}"
    if event.to_status == TaskStatus.COMPLETED:
        return f":white_check_mark: {who} marked {task.ref} done"
    if event.to_status == TaskStatus.QUEUED:
        why = event.note.removeprefix(f"{REOPENED_NOTE}: ") if event.note else ""
        said = f": {escape_mrkdwn(one_line(why, 300))}" if why and why != REOPENED_NOTE else ""
        return f":leftwards_arrow_with_hook: {who} reopened {task.ref}{said}"
    return f"{who} moved {task.ref} to {describe_status(event.to_status or TaskStatus.QUEUED)}"


def report_fallback_text(report: CompletionReport, task: Task, gaps: Sequence[str] = ()) -> str:
    """The notification text (and what screen readers get): the plain-text layout."""
    return safe_model_markdown(f"{task.ref} — {render_pm_report(report, gaps)}")[:3900]


def build_matrix_blocks(report: CompletionReport, *, gaps: Sequence[str] = ()) -> list[Block]:
    """The self-assessment matrix (the Details modal of an answer)."""
    blocks: list[Block] = [section(f"*SELF-ASSESSMENT SCORES:*\n{score_tree(report.self_view())}")]
    flags = [_flag_line(report, flag) for flag in report.flags_in(SELF_AXES)]
    flags += [f"• :warning: gap: {escape_mrkdwn(gap)}" for gap in gaps]
    blocks.append(
        section("*RED FLAGS:*\n" + ("\n".join(flags) if flags else "none (every score ≥ 6)"))
    )
    notes = escape_mrkdwn(report.confidence_notes.strip()) or "—"
    blocks.append(section(f"*CONFIDENCE NOTES:* {notes}"))
    blocks.append(context(f"Status: {status_line(report.status)}"))
    return blocks


def _flag_line(report: CompletionReport, flag: RedFlag) -> str:
    return (
        f"• *{escape_mrkdwn(flag.axis.label)} {report.score(flag.axis)}/9:* "
        f"{escape_mrkdwn(flag.explanation)} _Mitigation:_ {escape_mrkdwn(flag.mitigation)}"
    )


def score_digits(report: CompletionReport) -> str:
    return "·".join(str(score) for _, score in report.self_view())


def summary_text(
    report: CompletionReport, *, coordination: str | None, private: bool, gaps: Sequence[str]
) -> str:
    """The one line under an answer: the self-assessment in digits, red flags, where the
    report went ("Self-assessment 7·8·7·6·8 · 1 red flag · report in #pm-coordination")."""
    flags = report.red_flag_count
    parts = [f"Self-assessment {score_digits(report)}"]
    parts.append(f"{flags} red flag" + ("" if flags == 1 else "s") if flags else "no red flags")
    if gaps:
        parts.append(f":warning: {len(gaps)} report gap" + ("" if len(gaps) == 1 else "s"))
    if private:
        parts.append(":lock: only you can see this task until you share it")
    elif coordination:
        parts.append(f"report in <#{coordination}>")
    return " · ".join(parts)


def build_summary_blocks(
    report: CompletionReport,
    *,
    task: Task,
    turn_id: int,
    coordination: str | None,
    gaps: Sequence[str] = (),
) -> list[Block]:
    """The compact line under an answer, with Details (and Share with PM when private)."""
    private = task.visibility == Visibility.PRIVATE
    elements = [button("Details", ACTION_DETAILS, str(turn_id))]
    if private and coordination:
        elements.append(button("Share with PM", ACTION_SHARE, str(task.id), style="primary"))
    return [
        context(summary_text(report, coordination=coordination, private=private, gaps=gaps)),
        {"type": "actions", "block_id": f"turn_summary:{turn_id}", "elements": elements},
    ]


def build_details_modal(
    report: CompletionReport, task: Task, gaps: Sequence[str]
) -> dict[str, Any]:
    """The full assessment behind an answer's summary line."""
    blocks: list[Block] = [section(f"*{task.ref}* {escape_mrkdwn(one_line(report.task, 200))}")]
    blocks += build_matrix_blocks(report, gaps=gaps)
    pm_flags = [f for f in report.flags_in(PM_AXES) if f.axis.value not in SELF_AXES]
    pm_lines = [_flag_line(report, flag) for flag in pm_flags]
    blocks.append(
        section(
            f"*The PM report's scores:*\n{score_tree(report.pm_view())}"
            + ("\n" + "\n".join(pm_lines) if pm_lines else "")
        )
    )
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": clip(f"{task.ref} assessment", 24)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


def build_working_blocks(turn_id: int) -> list[Block]:
    """The line a running turn shows, with Stop for the person who asked."""
    return [
        {
            "type": "section",
            "block_id": f"turn_working:{turn_id}",
            "text": {"type": "mrkdwn", "text": ":hourglass_flowing_sand: Working on it…"},
            "accessory": button("Stop", ACTION_STOP, str(turn_id), style="danger"),
        }
    ]


def feedback_block(turn_id: int) -> Block:
    """Slack's 👍/👎 under an answer; the block id says which turn it rates."""

    def side(emoji: str, value: str, label: str) -> dict[str, Any]:
        return {
            "text": {"type": "plain_text", "text": emoji},
            "value": value,
            "accessibility_label": label,
        }

    return {
        "type": "context_actions",
        "block_id": f"feedback:{turn_id}",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": ACTION_FEEDBACK,
                "positive_button": side("👍", "good", "This answer helped"),
                "negative_button": side("👎", "bad", "This answer missed"),
            }
        ],
    }


def build_sources_blocks(
    cited: Sequence[tuple[int, str, str]], *, consulted: int, live: bool, web: bool
) -> list[Block]:
    """The line under a researched answer: the sources the answer cites, as (number, url,
    title) with the numbers it cites them by, at most MAX_SOURCES; else what research there
    was. `consulted`: how many sources the research returned; `live`: whether every research
    request reached live sources; `web`: whether web search is on at all."""
    seen: set[str] = set()
    links: list[str] = []
    for number, url, title in cited:
        if not url.startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        label = escape_mrkdwn(title or url).replace("|", "¦")
        links.append(f"[{number}] <{url}|{clip(label, 80)}>")
    if not links:
        if not web:
            return [context(":mag: Research: no live sources (web search is off)")]
        if not live:
            return [
                context(
                    ":mag: Research: no live sources came back; the findings are the "
                    "researcher's own knowledge, not checked against current material"
                )
            ]
        if consulted:
            return [
                context(f":mag: Research consulted {consulted} source(s); the answer cites none")
            ]
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
    if event.kind == "shared":
        return f":outbox_tray: Shared with the PM by {who}"
    if event.to_status == TaskStatus.BLOCKED:
        reason = f": _{escape_mrkdwn(one_line(event.note, 200))}_" if event.note else ""
        return f":no_entry: Marked blocked by {who}{reason}"
    if event.to_status == TaskStatus.COMPLETED:
        return f":white_check_mark: Marked done by {who}"
    if event.to_status == TaskStatus.QUEUED:
        reopened = (event.note or "").startswith(REOPENED_NOTE)
        verb = "Reopened" if reopened else "Follow-up asked"
        return f":leftwards_arrow_with_hook: {verb} by {who}"
    if event.to_status:
        return f"{describe_status(event.to_status)} by {who}"
    return f"{escape_mrkdwn(event.kind)} by {who}"


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
