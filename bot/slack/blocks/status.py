"""Block Kit builders for `/pm` answers, the App Home board and the blocked-reason modal (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from agents.reports import (
    PM_AXES,
    RED_FLAG_BELOW,
    SELF_AXES,
    CompletionReport,
    ReportStatus,
    status_line,
)
from bot.core.pm_grammar import Period
from bot.slack.blocks.report import _escape as escape
from bot.slack.blocks.report import build_task_actions, context, section
from storage.models import Report, Task, TaskEvent, TaskStatus, Turn
from storage.queries import ListKind, TaskDetail, TaskFilter, UsageSummary
from storage.tasks import BOT_ACTOR, describe_status

Block = dict[str, Any]
MESSAGE_BLOCK_LIMIT = 50
HOME_BLOCK_LIMIT = 100
ACTION_LIST_NEXT = "pm_list_next"
BLOCKED_MODAL = "task_blocked_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
REASON_LIMIT = 500

STATUS_ICON: dict[TaskStatus, str] = {
    TaskStatus.QUEUED: ":inbox_tray:",
    TaskStatus.WORKING: ":gear:",
    TaskStatus.IN_PROGRESS: ":hourglass_flowing_sand:",
    TaskStatus.BLOCKED: ":no_entry:",
    TaskStatus.COMPLETED: ":white_check_mark:",
    TaskStatus.FAILED: ":x:",
}
_SHORT_AXES = {
    "system_architecture_design": "Arch",
    "implementation_feasibility": "Feas",
    "scalability_performance": "Scale",
    "risk_assessment": "Risk",
    "integration_reliability": "Integ",
}
_LIST_TITLES: dict[ListKind, str] = {
    ListKind.OPEN: "Open tasks",
    ListKind.BLOCKED: "Blocked tasks",
    ListKind.DONE: "Completed tasks",
    ListKind.MINE: "Your tasks",
}

HELP_TEXT = (
    "*`/pm` — task status from pmteam*\n"
    "`/pm status` — counts by status, and your open tasks\n"
    "`/pm status T-42` — one task: request, history, turns, report, sources, cost\n"
    "`/pm list [open|blocked|done|mine|@person|#channel]` — tasks, newest first\n"
    "`/pm standup` — preview the standup · `/pm standup post` — post it now\n"
    "`/pm report T-42` — post a task's last report to the coordination channel again\n"
    "`/pm usage [week|month]` — tokens, cache share, web searches and cost\n"
    "`/pm help` — this text"
)


# --- small pieces ----------------------------------------------------------------------------


def when(moment: datetime) -> str:
    """A time Slack shows in each reader's own time zone (the fallback is UTC)."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def status_label(status: str) -> str:
    try:
        known = TaskStatus(status)
    except ValueError:
        return f":grey_question: {escape(status)}"
    return f"{STATUS_ICON[known]} {describe_status(known)}"


def _clip(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def task_line(task: Task, *, show_requester: bool = True) -> str:
    who = f" · <@{task.requester_id}>" if show_requester else ""
    return (
        f"*{task.ref}* {status_label(task.status)} — {escape(_clip(task.title, 120))}"
        f"{who} · <#{task.channel_id}> · {when(task.updated_at)}"
    )


def stored_report(report: Report) -> CompletionReport | None:
    """The stored report, read leniently: one kept with gaps still renders."""
    try:
        return CompletionReport.model_validate(report.data, context={"gaps": []})
    except ValidationError:
        return None


def short_scores(report: CompletionReport) -> str:
    parts = []
    for key, label in _SHORT_AXES.items():
        score = getattr(report.pm_scores, key)
        parts.append(f"{label} {score}" + (" :warning:" if score < RED_FLAG_BELOW else ""))
    return " · ".join(parts)


def _tree(items: Sequence[tuple[str, int]]) -> str:
    lines = []
    for index, (label, score) in enumerate(items):
        branch = "└──" if index == len(items) - 1 else "├──"
        value = f"*{score}/9* :warning:" if score < RED_FLAG_BELOW else f"{score}/9"
        lines.append(f"`{branch}` {label}: {value}")
    return "\n".join(lines)


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


# --- /pm help, errors, refusals --------------------------------------------------------------


def build_help_blocks() -> list[Block]:
    return [section(HELP_TEXT)]


def build_unrecognised_blocks(problem: str) -> list[Block]:
    return [
        section(f":thinking_face: {escape(problem)}"),
        context(
            "Try `/pm status`, `/pm status T-42`, `/pm list blocked`, `/pm usage` "
            "or `/pm help` for everything."
        ),
    ]


def build_notice_blocks(text: str) -> list[Block]:
    """A short answer written by pmteam (it may contain mentions and links of its own)."""
    return [section(text)]


# --- /pm status -------------------------------------------------------------------------------


def build_counts_fields(counts: dict[TaskStatus, int]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"{status_label(status)}\n*{counts.get(status, 0):,}*"}
            for status in TaskStatus
        ],
    }


def build_status_blocks(counts: dict[TaskStatus, int], mine: Sequence[Task]) -> list[Block]:
    open_total = sum(
        counts.get(s, 0)
        for s in (TaskStatus.QUEUED, TaskStatus.WORKING, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED)
    )
    blocks: list[Block] = [
        section(f"*Tasks by status* — {open_total:,} open"),
        build_counts_fields(counts),
    ]
    if mine:
        lines = "\n".join(f"• {task_line(t, show_requester=False)}" for t in mine)
        blocks.append(section(f"*Your open tasks*\n{lines}"))
    else:
        blocks.append(section("*Your open tasks*\nnone — mention me in a thread to start one."))
    blocks.append(context("`/pm status T-42` for one task · `/pm list blocked` · `/pm help`"))
    return blocks


# --- /pm status T-42 --------------------------------------------------------------------------


def _event_phrase(event: TaskEvent) -> str:
    who = "pmteam" if event.actor == BOT_ACTOR else f"<@{event.actor}>"
    if event.kind == "acknowledged":
        text = f"acknowledged by {who}"
    elif event.kind == "status" and event.to_status:
        moved = f"{describe_status(event.from_status)} → " if event.from_status else ""
        text = f"{moved}*{describe_status(event.to_status)}* by {who}"
    else:
        text = f"{escape(event.kind)} by {who}"
    if event.note:
        text += f" — _{escape(_clip(event.note, 160))}_"
    return f"{when(event.created_at)} {text}"


def _turn_phrase(turn: Turn) -> str:
    took = ""
    if turn.started_at and turn.finished_at:
        took = f" in {max(0, int((turn.finished_at - turn.started_at).total_seconds()))}s"
    failure = f" — _{escape(_clip(turn.failure_reason, 160))}_" if turn.failure_reason else ""
    return (
        f"#{turn.seq} {escape(turn.status)}{took} · <@{turn.user_id}>: "
        f"“{escape(_clip(turn.text, 100))}”{failure}"
    )


def build_report_summary_blocks(report: Report) -> list[Block]:
    parsed = stored_report(report)
    if parsed is None:
        return [section(f"*Last report* ({when(report.created_at)}): could not be read.")]
    pm = [(label, getattr(parsed.pm_scores, key)) for key, label in PM_AXES.items()]
    own = [(label, getattr(parsed.self_assessment, key)) for key, label in SELF_AXES.items()]
    blocks = [
        section(
            f"*Last report* ({when(report.created_at)}) — {status_line(parsed.status)}\n"
            f"{escape(parsed.task)}\n*PM scores:*\n{_tree(pm)}\n*Self-assessment:*\n{_tree(own)}"
        )
    ]
    flags = [
        f":red_circle: *{flag.axis.label}* — {escape(flag.explanation)} "
        f"_Mitigation:_ {escape(flag.mitigation)}"
        for flag in parsed.red_flags
    ]
    flags += [f":warning: gap: {escape(gap)}" for gap in report.gaps]
    if flags:
        blocks.append(section("*Red flags:*\n" + "\n".join(flags)))
    return blocks


def _source_links(detail: TaskDetail, limit: int = 8) -> list[str]:
    seen: set[str] = set()
    links: list[str] = []
    for research in detail.research:
        for source in research.sources:
            url = str(source.get("url") or "")
            if not url.startswith(("http://", "https://")) or url in seen or "|" in url:
                continue
            seen.add(url)
            title = escape(_clip(str(source.get("title") or url), 80)).replace("|", "¦")
            links.append(f"<{url.replace('>', '%3E')}|{title}>")
    return links[:limit]


def build_task_detail_blocks(detail: TaskDetail, permalink: str | None) -> list[Block]:
    task = detail.task
    reason = f" — _{escape(_clip(task.status_reason, 300))}_" if task.status_reason else ""
    estimate = (
        f"\n*Estimated time:* {escape(_clip(task.estimated_time, 100))}"
        if task.estimated_time and task.status == TaskStatus.IN_PROGRESS
        else ""
    )
    blocks: list[Block] = [
        section(
            f"*{task.ref}* · {status_label(task.status)}{reason}{estimate}\n"
            f"*Request* from <@{task.requester_id}> in <#{task.channel_id}>, "
            f"{when(task.created_at)}:\n>{escape(_clip(task.request_text, 1200))}"
        )
    ]
    events = detail.events[-12:]
    skipped = len(detail.events) - len(events)
    history = "\n".join(f"• {_event_phrase(e)}" for e in events)
    more = f"\n_(and {skipped} earlier)_" if skipped else ""
    blocks.append(section(f"*Status history*\n{history or '• none'}{more}"))
    turns = detail.turns[-8:]
    if turns:
        blocks.append(section("*Turns*\n" + "\n".join(f"• {_turn_phrase(t)}" for t in turns)))
    if detail.last_report is not None:
        blocks += build_report_summary_blocks(detail.last_report)
    sources = _source_links(detail)
    if sources:
        blocks.append(context(":mag: *Sources:* " + " · ".join(sources)))
    where = f"<{permalink}|Open the thread>" if permalink else f"thread in <#{task.channel_id}>"
    blocks.append(
        context(f":moneybag: ${detail.cost_usd:,.4f} · {detail.tokens:,} tokens · {where}")
    )
    blocks.append(build_task_actions(task))
    return fit_blocks(blocks, MESSAGE_BLOCK_LIMIT)


# --- /pm list ---------------------------------------------------------------------------------


def list_title(task_filter: TaskFilter) -> str:
    if task_filter.kind is ListKind.USER:
        return f"Tasks requested by <@{task_filter.user_id}>"
    if task_filter.kind is ListKind.CHANNEL:
        return f"Tasks in <#{task_filter.channel_id}>"
    return _LIST_TITLES[task_filter.kind]


def encode_page(task_filter: TaskFilter, before_id: int) -> str:
    return json.dumps(
        {
            "kind": task_filter.kind.value,
            "user": task_filter.user_id,
            "channel": task_filter.channel_id,
            "before": before_id,
        },
        separators=(",", ":"),
    )


def decode_page(value: str) -> tuple[TaskFilter, int] | None:
    """The filter and position a "Next page" button carries; None if it isn't one of ours."""
    try:
        data = json.loads(value)
        task_filter = TaskFilter(
            kind=ListKind(data["kind"]),
            user_id=str(data["user"]) if data.get("user") else None,
            channel_id=str(data["channel"]) if data.get("channel") else None,
        )
        before = int(data["before"])
    except (ValueError, TypeError, KeyError):
        return None
    return (task_filter, before) if before > 0 else None


def build_task_list_blocks(
    task_filter: TaskFilter,
    tasks: Sequence[Task],
    *,
    next_before_id: int | None,
    page: int = 1,
) -> list[Block]:
    title = list_title(task_filter)
    page_note = f" — page {page}" if page > 1 else ""
    if not tasks:
        return [section(f"*{title}*{page_note}\nnone.")]
    blocks: list[Block] = [section(f"*{title}*{page_note} (newest first)")]
    blocks += [section(task_line(task)) for task in tasks]
    if next_before_id is not None:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"pm_list:{page + 1}",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Next page"},
                        "action_id": ACTION_LIST_NEXT,
                        "value": encode_page(task_filter, next_before_id),
                    }
                ],
            }
        )
    return fit_blocks(blocks, MESSAGE_BLOCK_LIMIT)


# --- /pm usage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Totals:
    tokens: int = 0
    cost_usd: float = 0.0
    web_searches: int = 0
    calls: int = 0


def _grouped(usage: UsageSummary, by: str) -> dict[str, _Totals]:
    groups: dict[str, _Totals] = {}
    for row in usage.rows:
        key = row.agent if by == "agent" else row.model
        old = groups.get(key, _Totals())
        groups[key] = _Totals(
            tokens=old.tokens + row.prompt_tokens + row.output_tokens,
            cost_usd=old.cost_usd + row.cost_usd,
            web_searches=old.web_searches + row.web_searches,
            calls=old.calls + row.calls,
        )
    return groups


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


def build_usage_blocks(usage: UsageSummary, *, period: Period, since: datetime) -> list[Block]:
    blocks: list[Block] = [
        section(f"*Usage this {period.value}* (since {when(since)})"),
        usage_fields(usage),
    ]
    if not usage.rows:
        blocks.append(context("No model calls in this period."))
        return blocks
    for by in ("agent", "model"):
        lines = [
            f"• `{escape(name)}` — {t.tokens:,} tokens · {t.web_searches:,} searches · "
            f"{t.calls:,} calls · ${t.cost_usd:,.2f}"
            for name, t in sorted(_grouped(usage, by).items(), key=lambda kv: -kv[1].cost_usd)
        ]
        blocks.append(section(f"*By {by}*\n" + "\n".join(lines[:20])))
    return blocks


# --- the App Home board -----------------------------------------------------------------------


@dataclass(frozen=True)
class HomeBoard:
    """Everything the board shows; the shared part is built once for every viewer."""

    counts: dict[TaskStatus, int]
    blocked: list[Task]
    reports: list[tuple[Report, Task]]
    red_flags: list[tuple[Report, Task]]
    usage: UsageSummary
    week_start: datetime
    built_at: datetime


def _button(text: str, action_id: str, value: str) -> Block:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }


def build_home_view(
    board: HomeBoard,
    mine: Sequence[Task],
    *,
    notice: str | None = None,
    acknowledge_action: str,
    reopen_action: str,
) -> dict[str, Any]:
    """The Home tab; kept under Slack's 100-block limit whatever the data."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "pmteam — task board"}},
    ]
    if notice:
        blocks.append(section(f":warning: {notice}"))
    blocks.append(build_counts_fields(board.counts))

    blocks += [{"type": "divider"}, section(f"*:no_entry: Blocked* ({len(board.blocked)} shown)")]
    for task in board.blocked[:10]:
        reason = escape(_clip(task.status_reason or "no reason given", 200))
        blocks.append(
            {
                **section(
                    f"*{task.ref}* {escape(_clip(task.title, 100))}\n_{reason}_\n"
                    f"waiting: <@{task.requester_id}> since {when(task.updated_at)}"
                ),
                "accessory": _button("Reopen", reopen_action, str(task.id)),
            }
        )
    if not board.blocked:
        blocks.append(context("Nothing is blocked."))

    blocks += [{"type": "divider"}, section("*Your open tasks*")]
    if mine:
        blocks.append(section("\n".join(f"• {task_line(t, show_requester=False)}" for t in mine)))
    else:
        blocks.append(context("None — mention me in a thread to start one."))

    blocks += [{"type": "divider"}, section("*Last 10 reports*")]
    for report, task in board.reports[:10]:
        parsed = stored_report(report)
        if parsed is None:
            summary = "report could not be read"
        else:
            summary = f"{escape(_clip(parsed.task, 120))}\n{short_scores(parsed)}"
        status = status_line(ReportStatus(report.status)) if parsed else escape(report.status)
        blocks.append(
            {
                **section(f"*{task.ref}* {status} · {when(report.created_at)}\n{summary}"),
                "accessory": _button("Acknowledge", acknowledge_action, str(task.id)),
            }
        )
    if not board.reports:
        blocks.append(context("No reports yet."))

    since = when(board.week_start)
    blocks += [{"type": "divider"}, section(f"*:red_circle: Red flags this week* (since {since})")]
    flag_lines: list[str] = []
    for report, task in board.red_flags[:10]:
        parsed = stored_report(report)
        flags = parsed.red_flags if parsed else []
        for flag in flags[:3]:
            flag_lines.append(
                f"• *{task.ref}* {flag.axis.label}: {escape(_clip(flag.explanation, 140))}"
            )
    blocks.append(section("\n".join(flag_lines)) if flag_lines else context("None this week."))

    blocks += [{"type": "divider"}, section("*Usage this week*"), usage_fields(board.usage)]
    blocks.append(context(f"Updated {when(board.built_at)} · `/pm help` for commands"))
    return {"type": "home", "blocks": fit_blocks(blocks, HOME_BLOCK_LIMIT)}


# --- buttons: the report's activity line and the blocked-reason modal -------------------------


def _activity_phrase(event: TaskEvent) -> str:
    who = f"<@{event.actor}>"
    if event.kind == "acknowledged":
        return f":heavy_check_mark: Acknowledged by {who}"
    if event.to_status == TaskStatus.BLOCKED:
        reason = f": _{escape(_clip(event.note, 200))}_" if event.note else ""
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


@dataclass(frozen=True)
class ClickOrigin:
    """Where a button was clicked, so the modal's submission can answer in the same place."""

    channel_id: str | None = None
    message_ts: str | None = None
    is_ephemeral: bool = False
    response_url: str | None = None


def build_blocked_modal(task: Task, origin: ClickOrigin) -> dict[str, Any]:
    metadata = json.dumps(
        {
            "task_id": task.id,
            "channel": origin.channel_id,
            "ts": origin.message_ts,
            "ephemeral": origin.is_ephemeral,
            "response_url": origin.response_url,
        },
        separators=(",", ":"),
    )
    return {
        "type": "modal",
        "callback_id": BLOCKED_MODAL,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Mark blocked"},
        "submit": {"type": "plain_text", "text": "Mark blocked"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"*{task.ref}* {escape(_clip(task.title, 200))}"),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "What is it blocked on?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": REASON_LIMIT,
                    "placeholder": {
                        "type": "plain_text",
                        "text": "e.g. waiting for production database credentials",
                    },
                },
            },
        ],
    }


def decode_modal_origin(metadata: str) -> tuple[int, ClickOrigin] | None:
    try:
        data = json.loads(metadata)
        task_id = int(data["task_id"])
    except (ValueError, TypeError, KeyError):
        return None
    return task_id, ClickOrigin(
        channel_id=data.get("channel") or None,
        message_ts=data.get("ts") or None,
        is_ephemeral=bool(data.get("ephemeral")),
        response_url=data.get("response_url") or None,
    )
