"""Housekeeping jobs: one nudge per overdue estimate, text retention, dedupe keys, counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from aiohttp import ClientError
from slack_sdk.errors import SlackApiError

from bot.core.mrkdwn import clip, escape_mrkdwn
from bot.services.deps import Deps
from bot.services.handoffs import nudge_handoff_owners
from bot.services.task_moves import post_card
from bot.slack.client import error_name
from bot.slack.posting import post_metadata
from storage.housekeeping import PURGE_BATCH, compact_task_counts, purge_task_text
from storage.models import Task
from storage.records import drop_dedupe_keys
from storage.standups import mark_nudged, nudge_candidates, unmark_nudged
from storage.tasks import (
    BOT_ACTOR,
    mark_report_posted,
    mark_report_unposted,
    record_task_event,
    unposted_reports,
)
from storage.types import utcnow

log = structlog.get_logger("pmteam.housekeeping")

DEDUPE_KEYS_KEPT = timedelta(days=1)  # Slack stops retrying an event within minutes
# Slack errors that another try won't fix: the nudge is given up (and stays marked as sent).
_PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "invalid_thread_ts", "thread_not_found"}
)


def _ago(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours < 1:
        return f"{max(int(delta.total_seconds() // 60), 1)} min"
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def build_nudge_text(task: Task, *, now: datetime, timezone: ZoneInfo) -> str:
    """The one reminder an overdue task gets, in its thread, addressed to its requester."""
    assert task.estimate_due_at is not None
    due = task.estimate_due_at.astimezone(timezone)
    estimate = escape_mrkdwn(clip(task.estimated_time or "an estimate", 80))
    return (
        f"<@{task.requester_id}> :alarm_clock: {task.ref} ({escape_mrkdwn(clip(task.title, 120))}) "
        f"was estimated at {estimate}, and that ran out {_ago(now - task.estimate_due_at)} ago "
        f"({due:%a} {due.day} {due:%b %H:%M %Z}). Is it still in progress? Mention me here "
        "with an update to pick it up again, or mark it done or blocked with the buttons on "
        "its report."
    )


def nudge_key(task: Task) -> str:
    assert task.estimate_due_at is not None
    return f"task:{task.id}:nudge:{task.estimate_due_at.isoformat(timespec='minutes')}"


@dataclass
class Housekeeping:
    deps: Deps
    clock: Callable[[], datetime] = utcnow

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.deps.settings.timezone)

    async def post_unposted_reports(self) -> list[int]:
        """Try again the cards the coordination channel refused (backing off per task);
        returns the tasks whose card went out."""
        sessions = self.deps.sessions
        async with sessions() as session:
            due = await unposted_reports(session=session, due_by=self.clock())
        posted: list[int] = []
        for task in due:
            assert task.id is not None
            try:
                await post_card(self.deps, task_id=task.id)
            except (SlackApiError, ClientError, TimeoutError) as exc:
                error = error_name(exc)
                async with sessions.begin() as session:
                    tries = await mark_report_unposted(
                        session=session, task_id=task.id, error=error, now=self.clock()
                    )
                log.warning("report still not posted", task=task.ref, error=error, tries=tries)
                continue
            async with sessions.begin() as session:
                await mark_report_posted(session=session, task_id=task.id)
            log.info("report posted after all", task=task.ref)
            posted.append(task.id)
        return posted

    async def nudge_overdue_tasks(self) -> list[int]:
        """Nudge each IN_PROGRESS task past its estimate once; returns the tasks nudged.

        The nudge is claimed in the database first (nudged_at, compare-and-set), so replicas
        never both send it. If Slack refuses for a passing reason the claim is undone and the
        next run tries again; a process dying between the claim and the post loses that one
        nudge rather than ever sending two.
        """
        sessions = self.deps.sessions
        now = self.clock()
        async with sessions() as session:
            candidates = await nudge_candidates(session=session, now=now)
        nudged: list[int] = []
        for task in candidates:
            assert task.id is not None
            async with sessions.begin() as session:
                if not await mark_nudged(session=session, task_id=task.id, now=now):
                    continue  # another replica nudged it, or it moved on meanwhile
            try:
                await self.deps.client.chat_postMessage(
                    channel=task.channel_id,
                    thread_ts=task.thread_ts,
                    text=build_nudge_text(task, now=now, timezone=self.timezone),
                    metadata=post_metadata(nudge_key(task), installation=self.deps.installation),
                    unfurl_links=False,
                )
            except (SlackApiError, ClientError, TimeoutError) as exc:
                error = error_name(exc)
                if error in _PERMANENT_ERRORS:
                    log.warning("nudge not possible; not retried", task=task.ref, error=error)
                else:
                    log.warning("nudge not posted; retried next run", task=task.ref, error=error)
                    async with sessions.begin() as session:
                        await unmark_nudged(session=session, task_id=task.id, nudged_at=now)
                continue
            async with sessions.begin() as session:
                await record_task_event(
                    session=session,
                    task_id=task.id,
                    kind="nudged",
                    actor=BOT_ACTOR,
                    note=f"estimate ({task.estimated_time}) passed; requester nudged",
                    now=now,
                )
            log.info("overdue task nudged", task=task.ref, requester=task.requester_id)
            nudged.append(task.id)
        # Handoffs open past PMTEAM_HANDOFF_NUDGE_DAYS: their owners, once each.
        await nudge_handoff_owners(self.deps, now=now)
        return nudged

    async def purge_old_text(self) -> int:
        """PMTEAM_RETENTION_DAYS: message text of tasks finished before then is removed."""
        days = self.deps.settings.retention_days
        if days <= 0:
            return 0
        now, purged = self.clock(), 0
        while True:
            # A transaction per batch: SQLite's write lock is never held for the whole purge.
            async with self.deps.sessions.begin() as session:
                batch = await purge_task_text(
                    session=session, older_than=timedelta(days=days), now=now
                )
            purged += batch
            if batch < PURGE_BATCH:
                break
        if purged:
            log.info("retention: message text removed", tasks=purged, older_than_days=days)
        return purged

    async def drop_old_dedupe_keys(self) -> int:
        async with self.deps.sessions.begin() as session:
            return await drop_dedupe_keys(
                session=session, older_than=DEDUPE_KEYS_KEPT, now=self.clock()
            )

    async def compact_task_counts(self) -> int:
        """Fold the per-change rows behind the task counts into one per status, so counting
        stays a sum of a few rows; returns how many rows were folded."""
        async with self.deps.sessions.begin() as session:
            return await compact_task_counts(session=session)
