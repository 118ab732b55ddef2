"""Block Kit for the App Home tab: the task board every visitor sees, plus their own tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.reports import RED_FLAG_BELOW, CompletionReport, ReportStatus, status_line
from bot.core.budget import Budget, Spend
from bot.core.mrkdwn import escape_mrkdwn, one_line
from bot.slack.blocks.common import (
    HOME_BLOCK_LIMIT,
    Block,
    build_counts_fields,
    button,
    context,
    fit_blocks,
    header,
    section,
    stored_report,
    task_line,
    usage_fields,
    when,
)
from storage.models import ChannelConvention, Report, Task, TaskStatus
from storage.queries import UsageSummary

_SHORT_AXES = {
    "system_architecture_design": "Arch",
    "implementation_feasibility": "Feas",
    "scalability_performance": "Scale",
    "risk_assessment": "Risk",
    "integration_reliability": "Integ",
}


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
    unposted: list[Task] = field(default_factory=list)  # cards the PM's channel refused
    today: Budget | None = None  # the workspace's daily budget, when there is one
    conventions: list[ChannelConvention] = field(default_factory=list)  # channels that have them


def build_home_view(
    board: HomeBoard,
    mine: Sequence[Task],
    *,
    notice: str | None = None,
    acknowledge_action: str,
    reopen_action: str,
    waiting: Sequence[str] = (),
) -> dict[str, Any]:
    """The Home tab; kept under Slack's 100-block limit whatever the data. `waiting`: the
    lines of the handoffs open on this person, shown first when there are any."""
    blocks: list[Block] = [header("pmteam — task board")]
    if notice:
        blocks.append(section(f":warning: {notice}"))
    blocks.append(build_counts_fields(board.counts))
    if board.unposted:
        waiting = ", ".join(
            f"{task.ref} (`{escape_mrkdwn(task.report_error or 'unknown')}`)"
            for task in board.unposted[:5]
        )
        blocks.append(
            section(
                f":warning: *Reports waiting to be posted to the PM's channel:* {waiting}. "
                "pmteam keeps trying; if it says `not_in_channel`, invite @pmteam there "
                "(`pmteam doctor` checks the channel)."
            )
        )

    if waiting:
        blocks += [
            {"type": "divider"},
            section("*:raising_hand: Waiting on you*\n" + "\n".join(waiting[:10])),
            context("Done or Decline from my DM to you · `/pm handoffs` lists them all"),
        ]
    blocks += [{"type": "divider"}, section(f"*:no_entry: Blocked* ({len(board.blocked)} shown)")]
    for task in board.blocked[:10]:
        reason = escape_mrkdwn(one_line(task.status_reason or "no reason given", 200))
        blocks.append(
            {
                **section(
                    f"*{task.ref}* {escape_mrkdwn(one_line(task.title, 100))}\n_{reason}_\n"
                    f"waiting: <@{task.requester_id}> since {when(task.updated_at)}"
                ),
                "accessory": button("Reopen", reopen_action, str(task.id)),
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
            summary = f"{escape_mrkdwn(one_line(parsed.task, 120))}\n{short_scores(parsed)}"
        status = (
            status_line(ReportStatus(report.status)) if parsed else escape_mrkdwn(report.status)
        )
        blocks.append(
            {
                **section(f"*{task.ref}* {status} · {when(report.created_at)}\n{summary}"),
                "accessory": button("Acknowledge", acknowledge_action, str(task.id)),
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
            explanation = escape_mrkdwn(one_line(flag.explanation, 140))
            flag_lines.append(f"• *{task.ref}* {escape_mrkdwn(flag.axis.label)}: {explanation}")
    blocks.append(section("\n".join(flag_lines)) if flag_lines else context("None this week."))

    if board.conventions:
        listed = " · ".join(
            f"<#{c.channel_id}> ({when(c.updated_at)})" for c in board.conventions[:20]
        )
        blocks += [
            {"type": "divider"},
            section(f"*:memo: Channel conventions*\n{listed}"),
            context(
                "Sent to the engineer with every task from those channels · "
                "`/pm conventions` in a channel shows them, `/pm conventions set` edits them"
            ),
        ]

    blocks += [{"type": "divider"}, section("*Usage this week*"), usage_fields(board.usage)]
    if board.today is not None:
        blocks.append(context(Spend(workspace=board.today, person=Budget(None, 0.0)).summary()))
    blocks.append(context(f"Updated {when(board.built_at)} · `/pm help` for commands"))
    return {"type": "home", "blocks": fit_blocks(blocks, HOME_BLOCK_LIMIT)}


def short_scores(report: CompletionReport) -> str:
    parts = []
    for key, label in _SHORT_AXES.items():
        score = report.score(key)
        parts.append(f"{label} {score}" + (" :warning:" if score < RED_FLAG_BELOW else ""))
    return " · ".join(parts)
