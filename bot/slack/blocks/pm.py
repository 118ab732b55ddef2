"""Block Kit for `/pm` answers: help, status, one task's detail, task lists and usage (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agents.reports import status_line
from bot.core.budget import Spend
from bot.core.mrkdwn import escape_mrkdwn, one_line
from bot.core.pm_grammar import Period
from bot.core.task_rules import TaskMove
from bot.slack.blocks.common import (
    MESSAGE_BLOCK_LIMIT,
    Block,
    build_counts_fields,
    button,
    context,
    fit_blocks,
    score_tree,
    section,
    status_label,
    stored_report,
    task_line,
    usage_fields,
    when,
)
from bot.slack.blocks.report import build_task_actions
from bot.slack.blocks.tools import tool_call_line
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
from storage.tasks import BOT_ACTOR, describe_status

ACTION_LIST_NEXT = "pm_list_next"
TOOL_CALLS_SHOWN = 10  # the newest team tool calls under /pm status T-n
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
    "`/pm handoffs [@person|all]` — open handoffs waiting on you (or them, or anyone)\n"
    "`/pm calibration` — how the self-scores and estimates compared with what happened\n"
    "`/pm conventions` — this channel's standing context for the engineer · "
    "`/pm conventions set` — edit it\n"
    "`/pm help` — this text"
)


# --- /pm help, errors, refusals --------------------------------------------------------------


def build_help_blocks() -> list[Block]:
    return [section(HELP_TEXT)]


def build_unrecognised_blocks(problem: str) -> list[Block]:
    return [
        section(f":thinking_face: {escape_mrkdwn(problem)}"),
        context(
            "Try `/pm status`, `/pm status T-42`, `/pm list blocked`, `/pm usage` "
            "or `/pm help` for everything."
        ),
    ]


def build_notice_blocks(text: str) -> list[Block]:
    """A short answer written by pmteam (it may contain mentions and links of its own)."""
    return [section(text)]


# --- /pm status -------------------------------------------------------------------------------


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
        text = f"{escape_mrkdwn(event.kind)} by {who}"
    if event.note:
        text += f" — _{escape_mrkdwn(one_line(event.note, 160))}_"
    return f"{when(event.created_at)} {text}"


def _turn_phrase(turn: Turn, report_kind: str | None) -> str:
    took = ""
    if turn.started_at and turn.finished_at:
        took = f" in {max(0, int((turn.finished_at - turn.started_at).total_seconds()))}s"
    failure = (
        f" — _{escape_mrkdwn(one_line(turn.failure_reason, 160))}_" if turn.failure_reason else ""
    )
    if turn.stop_requested_by and turn.status == TurnStatus.DONE:
        failure = f" — stopped by <@{turn.stop_requested_by}>, so no report"
    elif report_kind == ReportKind.CONVERSATION:
        failure = " — a conversational reply, so no report"
    return (
        f"#{turn.seq} {escape_mrkdwn(turn.status)}{took} · <@{turn.user_id}>: "
        f"“{escape_mrkdwn(one_line(turn.text, 100))}”{failure}"
    )


def build_report_summary_blocks(report: Report) -> list[Block]:
    parsed = stored_report(report)
    if parsed is None:
        return [section(f"*Last report* ({when(report.created_at)}): could not be read.")]
    pm, own = parsed.pm_view(), parsed.self_view()
    blocks = [
        section(
            f"*Last report* ({when(report.created_at)}) — {status_line(parsed.status)}\n"
            f"{escape_mrkdwn(parsed.task)}\n*PM scores:*\n{score_tree(pm)}\n"
            f"*Self-assessment:*\n{score_tree(own)}"
        )
    ]
    flags = [
        f":red_circle: *{escape_mrkdwn(flag.axis.label)} {parsed.score(flag.axis)}/9* — "
        f"{escape_mrkdwn(flag.explanation)} "
        f"_Mitigation:_ {escape_mrkdwn(flag.mitigation)}"
        for flag in parsed.red_flags
    ]
    flags += [f":warning: gap: {escape_mrkdwn(gap)}" for gap in report.gaps]
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
            title = escape_mrkdwn(one_line(str(source.get("title") or url), 80)).replace("|", "¦")
            links.append(f"<{url.replace('>', '%3E')}|{title}>")
    return links[:limit]


def ratings_phrase(ratings: dict[str, int]) -> str | None:
    """ "answers rated: 12 👍 2 👎", or None before anyone rated one."""
    good, bad = ratings.get(Rating.GOOD, 0), ratings.get(Rating.BAD, 0)
    return f"answers rated: {good} 👍 {bad} 👎" if good or bad else None


def build_task_detail_blocks(
    detail: TaskDetail, permalink: str | None, moves: Sequence[TaskMove] = ()
) -> list[Block]:
    """`/pm status T-n` for one viewer: `moves` are the buttons they may press now."""
    task = detail.task
    reason = (
        f" — _{escape_mrkdwn(one_line(task.status_reason, 300))}_" if task.status_reason else ""
    )
    estimate = (
        f"\n*Estimated time:* {escape_mrkdwn(one_line(task.estimated_time, 100))}"
        if task.estimated_time and task.status == TaskStatus.IN_PROGRESS
        else ""
    )
    blocks: list[Block] = [
        section(
            f"*{task.ref}* · {status_label(task.status)}{reason}{estimate}\n"
            f"*Request* from <@{task.requester_id}> {_where_asked(task)}, "
            f"{when(task.created_at)}:\n>{escape_mrkdwn(one_line(task.request_text, 1200))}"
        )
    ]
    if task.report_error:
        blocks.append(
            context(
                f":warning: Its report couldn't be posted to the PM's channel yet (Slack said "
                f"`{escape_mrkdwn(task.report_error)}`); pmteam is still trying."
            )
        )
    events = detail.events[-12:]
    skipped = len(detail.events) - len(events)
    history = "\n".join(f"• {_event_phrase(e)}" for e in events)
    more = f"\n_(and {skipped} earlier)_" if skipped else ""
    blocks.append(section(f"*Status history*\n{history or '• none'}{more}"))
    turns = detail.turns[-8:]
    if turns:
        lines = [f"• {_turn_phrase(t, detail.report_kinds.get(t.id or 0))}" for t in turns]
        blocks.append(section("*Turns*\n" + "\n".join(lines)))
    if detail.tool_calls:
        calls = detail.tool_calls[-TOOL_CALLS_SHOWN:]
        earlier = len(detail.tool_calls) - len(calls)
        shown = "\n".join(f"• {tool_call_line(call)}" for call in calls)
        more = f"\n_(and {earlier} earlier)_" if earlier else ""
        blocks.append(section(f"*Tools*\n{shown}{more}"))
    if detail.last_report is not None:
        blocks += build_report_summary_blocks(detail.last_report)
    sources = _source_links(detail)
    if sources:
        blocks.append(context(":mag: *Research sources:* " + " · ".join(sources)))
    where = f"<{permalink}|Open the thread>" if permalink else f"thread in <#{task.channel_id}>"
    rated = ratings_phrase(detail.ratings)
    blocks.append(
        context(
            f":moneybag: ${detail.cost_usd:,.4f} · {detail.tokens:,} tokens"
            + (f" · {rated}" if rated else "")
            + f" · {where}"
        )
    )
    actions = build_task_actions(task, moves)
    if actions is not None:
        blocks.append(actions)
    return fit_blocks(blocks, MESSAGE_BLOCK_LIMIT)


def _where_asked(task: Task) -> str:
    return f"in <#{task.channel_id}>" if task.visibility == Visibility.CHANNEL else "privately"


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
                    button("Next page", ACTION_LIST_NEXT, encode_page(task_filter, next_before_id))
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


def build_usage_blocks(
    usage: UsageSummary, *, period: Period, since: datetime, today: Spend | None = None
) -> list[Block]:
    blocks: list[Block] = [
        section(f"*Usage this {period.value}* (since {when(since)})"),
        usage_fields(usage),
    ]
    if today is not None:
        blocks.append(context(today.summary()))
    if rated := ratings_phrase(usage.ratings):
        blocks.append(context(rated[0].upper() + rated[1:]))
    if not usage.rows:
        blocks.append(context("No model calls in this period."))
        return blocks
    for by in ("agent", "model"):
        lines = [
            f"• `{escape_mrkdwn(name)}` — {t.tokens:,} tokens · {t.web_searches:,} searches · "
            f"{t.calls:,} calls · ${t.cost_usd:,.2f}"
            for name, t in sorted(_grouped(usage, by).items(), key=lambda kv: -kv[1].cost_usd)
        ]
        blocks.append(section(f"*By {by}*\n" + "\n".join(lines[:20])))
    return blocks
