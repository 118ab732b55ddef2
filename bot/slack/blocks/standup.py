"""Block Kit for the standup: pure functions from a StandupDigest to blocks and text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import mean
from typing import Any
from zoneinfo import ZoneInfo

from agents.pm import StandupData, StandupTask
from agents.reports import SHORT_KIND_LABELS, WAITING_KINDS, ScoreAxis
from bot.core.calibration import CALIBRATION_DAYS, Calibration
from bot.core.mrkdwn import clip, escape_mrkdwn
from bot.slack.blocks.calibration import build_calibration_blocks
from bot.slack.blocks.common import SECTION_LIMIT, Block, context, header, section, stored_report
from bot.slack.blocks.handoffs import owner_text
from storage.models import HandoffItem, Report, Task, TaskStatus
from storage.standups import StandupDigest

LINE_LIMIT = 400


def _local(moment: datetime, timezone: ZoneInfo) -> str:
    local = moment.astimezone(timezone)
    return f"{local:%a} {local.day} {local:%b %H:%M %Z}"


def _day(moment: datetime, timezone: ZoneInfo) -> str:
    local = moment.astimezone(timezone)
    return f"{local:%a} {local.day} {local:%b}"


def format_duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 10 * 60 and minutes % 60:
        return f"{minutes // 60} h {minutes % 60} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _average(data: Mapping[str, Any], key: str) -> float | None:
    scores = data.get(key)
    if not isinstance(scores, dict):
        return None
    values = [v for v in scores.values() if isinstance(v, int | float)]
    return mean(values) if values else None


def average_scores(report: Report | None) -> str | None:
    """`avg 7.4 PM · 8.0 self`, from a stored report (None when it holds no scores)."""
    if report is None:
        return None
    parsed = stored_report(report)
    if parsed is not None:
        pm: float | None = mean(score for _, score in parsed.pm_view())
        own: float | None = mean(score for _, score in parsed.self_view())
    else:
        pm, own = _average(report.data, "pm_scores"), _average(report.data, "self_assessment")
    parts = [f"{pm:.1f} PM" if pm is not None else None, f"{own:.1f} self" if own else None]
    shown = [p for p in parts if p]
    return "avg " + " · ".join(shown) if shown else None


def _handoffs(report: Report | None, kinds: Sequence[str] | None = None) -> list[str]:
    """Handoff descriptions of a report (stored as {kind, description}, or as plain text)."""
    if report is None:
        return []
    found: list[str] = []
    for item in report.data.get("dependencies_handoffs") or []:
        if isinstance(item, dict):
            kind, text = str(item.get("kind") or ""), str(item.get("description") or "")
            if kinds is None or kind in kinds:
                label = SHORT_KIND_LABELS.get(kind)
                found.append(f"{label}: {text}" if label and kinds is None else text)
        elif isinstance(item, str) and kinds is None:
            found.append(item)
    return [text for text in found if text.strip()]


def _stored_score(data: Mapping[str, Any], axis: str) -> Any:
    for group in ("self_assessment", "pm_scores"):
        scores = data.get(group)
        if isinstance(scores, dict) and axis in scores:
            return scores[axis]
    return None


def _red_flags(report: Report) -> list[str]:
    flags: list[str] = []
    for flag in report.data.get("red_flags") or []:
        if not isinstance(flag, dict):
            continue
        axis = str(flag.get("axis") or "")
        try:
            score_axis = ScoreAxis(axis.rpartition(".")[2])
        except ValueError:
            label, score = axis or "a score", None
        else:
            label = score_axis.label
            score = _stored_score(report.data, score_axis.value)
        shown = f"{label} {score}/9" if score is not None else label
        flags.append(f"{shown}: {flag.get('explanation') or 'no explanation given'}")
    if not flags and report.red_flag_count:
        flags.append(f"{report.red_flag_count} red flag(s), lowest score {report.min_score}/9")
    return flags


@dataclass(frozen=True)
class StandupView:
    """Everything the standup message shows; `build_standup_blocks` turns it into Block Kit."""

    digest: StandupDigest
    timezone: ZoneInfo
    day: datetime  # the period's local day, for the header
    narrative: str | None = None
    links: Mapping[int, str] = field(default_factory=dict)
    note: str | None = None  # e.g. that it was posted late
    channel_scope: str | None = None  # the channel whose tasks it covers; None for all work
    # The self-score calibration, in the first standup of the week (Mondays).
    calibration: Calibration | None = None
    # Handoffs still open (oldest first), listed by owner; overdue after this long.
    open_handoffs: Sequence[tuple[HandoffItem, Task]] = ()
    overdue_after: timedelta = timedelta(days=3)

    def open_handoff_lines(self) -> list[str]:
        """One line per owner: their open handoffs with ages, overdue ones marked."""
        now = self.digest.until
        by_owner: dict[str, list[str]] = {}
        for handoff, task in self.open_handoffs:
            age = now - handoff.created_at
            late = " :warning: overdue" if age > self.overdue_after else ""
            item = (
                f"{task.ref} {escape_mrkdwn(clip(handoff.description, 100))} "
                f"({format_duration(age)}{late})"
            )
            by_owner.setdefault(owner_text(handoff), []).append(item)
        return [f"• {owner}: " + "; ".join(items) for owner, items in by_owner.items()]

    def ref(self, task: Task) -> str:
        url = self.links.get(task.id or 0)
        name = f"<{url}|{task.ref}>" if url else task.ref
        return f"{name} {escape_mrkdwn(clip(task.title, 120))}"

    def completed_lines(self) -> list[str]:
        lines = []
        for task, report in self.digest.completed:
            scores = average_scores(report)
            lines.append(f"• {self.ref(task)}" + (f" — {scores}" if scores else ""))
        return lines

    def in_progress_lines(self) -> list[str]:
        now = self.digest.until
        lines = []
        for task, _report in self.digest.in_progress:
            parts = [f"open {format_duration(now - task.created_at)}"]
            if task.status == TaskStatus.WORKING:
                parts.append("being worked on now")
            if task.estimated_time:
                parts.append(f"estimate {escape_mrkdwn(clip(task.estimated_time, 80))}")
            if task.estimate_due_at is not None and task.estimate_due_at < now:
                overdue = format_duration(now - task.estimate_due_at)
                parts.append(f":warning: *overdue* by {overdue}")
            lines.append(f"• {self.ref(task)} — " + " · ".join(parts))
        return lines

    def blocked_lines(self) -> list[str]:
        now = self.digest.until
        lines = []
        for task, report in self.digest.blocked:
            reason = escape_mrkdwn(clip(task.status_reason or "no reason given", 240))
            blocked_for = format_duration(now - task.updated_at)
            line = f"• {self.ref(task)} — blocked {blocked_for}: {reason}"
            waiting = [w for w in _handoffs(report, WAITING_KINDS) if w not in reason]
            if waiting:
                line += " · waiting on: " + escape_mrkdwn(clip("; ".join(waiting), 240))
            lines.append(line)
        return lines

    def red_flag_lines(self) -> list[str]:
        return [
            f"• {self.ref(task)}: " + escape_mrkdwn(clip("; ".join(_red_flags(report)), 300))
            for report, task in self.digest.red_flags
        ]

    def handoff_lines(self) -> list[str]:
        return [
            f"• {self.ref(task)}: " + escape_mrkdwn(clip("; ".join(_handoffs(report)), 300))
            for report, task in self.digest.handoffs
        ]

    def counts(self) -> dict[str, int]:
        d = self.digest
        return {
            "completed": len(d.completed),
            "in_progress": len(d.in_progress),
            "blocked": len(d.blocked),
            "red_flags": len(d.red_flags),
            "handoffs": len(d.handoffs),
        }


def _count(items: Sequence[object], limit: int) -> str:
    return f"{len(items)}+" if len(items) >= limit else str(len(items))


def list_section(title: str, lines: Sequence[str]) -> Block:
    """A titled list that stays within Slack's section limit: what doesn't fit is counted."""
    text = title
    for index, line in enumerate(lines):
        line = clip(line, LINE_LIMIT)
        rest = len(lines) - index
        more = f"\n…and {rest} more"
        if len(text) + 1 + len(line) + len(more) > SECTION_LIMIT:
            text += more
            break
        text += "\n" + line
    return section(text)


def usage_line(view: StandupView) -> str:
    usage = view.digest.usage
    calls = sum(row.calls for row in usage.rows)
    if not calls:
        return ":bar_chart: Usage: no model calls"
    parts = [f"{calls} model call{'s' if calls != 1 else ''}", f"{usage.tokens:,} tokens"]
    if usage.web_searches:
        parts.append(f"{usage.web_searches} web searches")
    parts.append(f"${usage.cost_usd:,.2f}")
    good, bad = usage.ratings.get("good", 0), usage.ratings.get("bad", 0)
    if good or bad:
        parts.append(f"answers rated: {good} 👍 {bad} 👎")
    return ":bar_chart: Usage: " + " · ".join(parts)


def build_standup_blocks(view: StandupView) -> list[Block]:
    """The standup: a short PM narrative, then the lists; at most a dozen blocks."""
    digest = view.digest
    tz = view.timezone
    title = f"Standup · {_day(view.day, tz)}"
    since = f"Since {_local(digest.since, tz)}"
    scope = f" · tasks asked in <#{view.channel_scope}>" if view.channel_scope else ""
    if digest.is_empty:
        since_when = _local(digest.since, tz)
        blocks = [section(f"*{title}* — no activity since {since_when}{scope}.")]
        if view.note:
            blocks.append(context(f":hourglass_flowing_sand: {view.note}"))
        return blocks
    blocks = [header(title), context(since + scope)]
    if view.note:
        blocks.append(context(f":hourglass_flowing_sand: {view.note}"))
    if view.narrative:
        blocks.append(section(escape_mrkdwn(view.narrative)))
    lim = digest.limit
    sections = (
        (":white_check_mark: *Completed*", digest.completed, view.completed_lines()),
        (":hourglass_flowing_sand: *In progress*", digest.in_progress, view.in_progress_lines()),
        (":no_entry: *Blocked*", digest.blocked, view.blocked_lines()),
        (":red_circle: *New red flags*", digest.red_flags, view.red_flag_lines()),
        (":handshake: *Handoffs waiting*", digest.handoffs, view.handoff_lines()),
    )
    for label, items, lines in sections:
        if items:
            blocks.append(list_section(f"{label} ({_count(items, lim)})", lines))
    if view.open_handoffs:
        blocks.append(
            list_section(
                f":bust_in_silhouette: *Open handoffs by owner* ({len(view.open_handoffs)})",
                view.open_handoff_lines(),
            )
        )
    if view.calibration is not None:
        blocks += build_calibration_blocks(view.calibration, days=CALIBRATION_DAYS)
    blocks.append(context(usage_line(view)))
    return blocks


def standup_fallback_text(view: StandupView) -> str:
    """The notification text (and what screen readers get)."""
    day = _day(view.day, view.timezone)
    if view.digest.is_empty:
        return f"Standup · {day}: no activity since {_local(view.digest.since, view.timezone)}."
    c = view.counts()
    text = (
        f"Standup · {day}: {c['completed']} completed, {c['in_progress']} in progress, "
        f"{c['blocked']} blocked, {c['red_flags']} new red flags, {c['handoffs']} handoffs waiting."
    )
    if view.narrative:
        text += " " + escape_mrkdwn(view.narrative)
    return clip(text, 3000)


def standup_data(view: StandupView) -> StandupData:
    """What the PM narrative is written from (titles as data, never as instructions)."""
    d, now = view.digest, view.digest.until

    def progress_detail(task: Task) -> str:
        detail = f"open {format_duration(now - task.created_at)}"
        if task.estimated_time:
            detail += f"; estimate {task.estimated_time}"
        if task.estimate_due_at is not None and task.estimate_due_at < now:
            detail += f"; overdue by {format_duration(now - task.estimate_due_at)}"
        return detail

    def blocked_detail(task: Task, report: Report | None) -> str:
        waiting = _handoffs(report, WAITING_KINDS)
        reason = task.status_reason or "no reason given"
        return reason + (f"; waiting on: {'; '.join(waiting)}" if waiting else "")

    return StandupData(
        period=f"since {_local(d.since, view.timezone)}",
        completed=[
            StandupTask(t.ref, t.title, t.status, average_scores(r)) for t, r in d.completed
        ],
        in_progress=[
            StandupTask(t.ref, t.title, t.status, progress_detail(t)) for t, _ in d.in_progress
        ],
        blocked=[StandupTask(t.ref, t.title, t.status, blocked_detail(t, r)) for t, r in d.blocked],
        red_flags=[
            StandupTask(t.ref, t.title, t.status, "; ".join(_red_flags(r))) for r, t in d.red_flags
        ],
        handoffs=[
            StandupTask(t.ref, t.title, t.status, "; ".join(_handoffs(r))) for r, t in d.handoffs
        ],
        counts=view.counts(),
        cost_usd=round(d.usage.cost_usd, 4),
    )


def blocks_as_text(blocks: Sequence[Block]) -> str:
    """A terminal rendering of the blocks, for `pmteam standup --dry-run`."""
    lines: list[str] = []
    for block in blocks:
        if block["type"] in ("header", "section") and "text" in block:
            lines.append(str(block["text"]["text"]))
        elif block["type"] == "context":
            lines.extend(str(element.get("text", "")) for element in block["elements"])
    return "\n".join(lines)
