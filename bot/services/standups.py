"""Standups: composed from the database, posted exactly once per (channel, local period)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.triggers.cron import CronTrigger
from slack_sdk.errors import SlackApiError

from agents.config import AgentSettings
from agents.llm import ModelClient
from agents.pm import write_standup_narrative
from bot.config import Settings
from bot.core.cron import adhoc_period_key, crontab_trigger, last_fire_time, period_key
from bot.runtime.worker import worker_identity
from bot.services.calibration import team_calibration
from bot.services.deps import Deps
from bot.slack.blocks.common import Block, context
from bot.slack.blocks.standup import (
    StandupView,
    build_standup_blocks,
    format_duration,
    standup_data,
    standup_fallback_text,
)
from bot.slack.client import permalink
from bot.slack.posting import find_keyed_message, post_metadata
from storage.handoffs import open_handoffs
from storage.models import Task
from storage.standups import (
    ClaimResult,
    StandupClaim,
    StandupStatus,
    claim_standup,
    find_standup,
    last_posted_standup,
    record_standup_posted,
    record_standup_skipped,
    release_standup,
    renew_standup_lease,
    standup_digest,
)
from storage.types import utcnow

log = structlog.get_logger("pmteam.standup")

STANDUP_LEASE = timedelta(minutes=5)  # far longer than composing and posting one takes
LATE_AFTER = timedelta(minutes=1)  # later than this after its slot, a standup says it is late
HISTORY_PAGES = 5  # how far back (x200 messages) a taken-over claim looks for its post
FIRST_STANDUP_COVERS = timedelta(hours=24)  # when a channel never had one and no slot before
MAX_LINKS = 40


# --- schedules and period keys -------------------------------------------------------------


@dataclass(frozen=True)
class StandupSchedule:
    channel_id: str
    cron: str
    trigger: CronTrigger


def standup_schedules(settings: Settings) -> list[StandupSchedule]:
    """The coordination channel on PMTEAM_STANDUP_CRON, plus PMTEAM_STANDUP_CHANNELS."""
    timezone = ZoneInfo(settings.timezone)
    crons: dict[str, str] = {}
    if settings.coordination_channel:
        crons[settings.coordination_channel] = settings.standup_cron
    crons.update(settings.standup_channels)
    return [
        StandupSchedule(channel, cron, crontab_trigger(cron, timezone=timezone))
        for channel, cron in crons.items()
    ]


def standup_post_key(channel_id: str, period: str) -> str:
    """The idempotency key in the message metadata, found again after a crash."""
    return f"standup:{channel_id}:{period}"


# --- composing and posting -----------------------------------------------------------------


@dataclass(frozen=True)
class StandupContent:
    channel_id: str | None
    view: StandupView
    text: str
    blocks: list[Block]

    @property
    def empty(self) -> bool:
        return self.view.digest.is_empty

    @property
    def until(self) -> datetime:
        return self.view.digest.until


class Outcome(StrEnum):
    POSTED = "posted"
    RECOVERED = "recovered"  # a crashed attempt had posted it; found in Slack and recorded
    ALREADY_DONE = "already done"
    BUSY = "busy"  # another process holds the claim
    SKIPPED = "skipped"  # missed, past the grace window
    EMPTY = "empty"  # nothing to report, and PMTEAM_STANDUP_SKIP_EMPTY is on
    FAILED = "failed"
    NO_CHANNEL = "no channel"


_SLACK_FIXES = {
    "not_in_channel": "invite @pmteam to the channel",
    "channel_not_found": "check the channel id (and invite @pmteam if it is private)",
    "is_archived": "the channel is archived",
}


@dataclass(frozen=True)
class StandupResult:
    channel_id: str | None
    period: str | None
    outcome: Outcome
    ts: str | None = None
    detail: str | None = None
    content: StandupContent | None = None

    def describe(self) -> str:
        """One line for a person (`/pm standup post`, `pmteam standup`)."""
        where = f"<#{self.channel_id}>"
        adhoc = (self.period or "").startswith("adhoc:")
        match self.outcome:
            case Outcome.POSTED:
                counts = self.content.view.counts() if self.content else {}
                if self.content is not None and self.content.empty:
                    return f"Posted the standup to {where} (no activity to report)."
                return (
                    f"Posted the standup to {where}: {counts.get('completed', 0)} completed, "
                    f"{counts.get('in_progress', 0)} in progress, "
                    f"{counts.get('blocked', 0)} blocked."
                )
            case Outcome.RECOVERED:
                return f"The standup for {where} had already been posted; it is now recorded."
            case Outcome.ALREADY_DONE:
                if adhoc:
                    return f"A standup was posted to {where} less than a minute ago."
                return f"The {self.period} standup for {where} was already handled."
            case Outcome.BUSY:
                return f"Another pmteam process is posting the standup to {where} right now."
            case Outcome.SKIPPED:
                return f"Skipped the standup for {where}: {self.detail}"
            case Outcome.EMPTY:
                return f"Nothing to report, so no standup went to {where}."
            case Outcome.FAILED:
                return f"Couldn't post the standup to {where}: {self.detail}"
            case Outcome.NO_CHANNEL:
                return (
                    "There is no standup channel: set PMTEAM_COORDINATION_CHANNEL, "
                    "or name a channel."
                )


class StandupLost(Exception):
    """The claim ran out and another process took it over before this one posted."""


def _slack_error(exc: SlackApiError) -> str:
    error = str(exc.response.get("error") or "error")
    fix = _SLACK_FIXES.get(error)
    return f"Slack said `{error}`" + (f"; {fix}." if fix else ".")


@dataclass
class StandupRunner:
    """Composes and posts standups; the scheduler, `pmteam standup` and `/pm standup` use it.

    Exactly once per (channel, period): claim the Standup row (unique key + lease), post with
    the key in the message metadata, then record the ts. A claim taken over from a crashed
    process first looks for that metadata in the channel, so a post whose recording was cut
    off is recorded, not repeated.
    """

    deps: Deps
    model: ModelClient | None
    agent_settings: AgentSettings
    clock: Callable[[], datetime] = utcnow
    owner: str = field(default_factory=worker_identity)
    lease: timedelta = STANDUP_LEASE
    schedules: list[StandupSchedule] = field(init=False)

    def __post_init__(self) -> None:
        self.schedules = standup_schedules(self.deps.settings)

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.deps.settings.timezone)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.deps.settings.standup_grace_minutes)

    def scope_for(self, channel_id: str | None) -> str | None:
        """The coordination channel's standup covers all work; another channel's, its own."""
        if channel_id is None or channel_id == self.deps.settings.coordination_channel:
            return None
        return channel_id

    def schedule_for(self, channel_id: str) -> StandupSchedule:
        for schedule in self.schedules:
            if schedule.channel_id == channel_id:
                return schedule
        cron = self.deps.settings.standup_cron
        return StandupSchedule(channel_id, cron, crontab_trigger(cron, timezone=self.timezone))

    # -- the scheduled path ----------------------------------------------------------------

    async def run_due(self) -> list[StandupResult]:
        """Every channel's latest slot: post it if due (late, within the grace window), skip
        it past the window, or take over a claim a crashed process left. Run every minute."""
        results = []
        for schedule in self.schedules:
            result = await self.run_channel(schedule.channel_id)
            if result is not None:
                results.append(result)
        return results

    async def run_channel(self, channel_id: str) -> StandupResult | None:
        """The channel's latest slot at or before now; None when it has none to look at."""
        schedule = self.schedule_for(channel_id)
        now = self.clock()
        due = last_fire_time(schedule.trigger, now=now, lookback=self.grace + timedelta(days=1))
        if due is None:
            return None
        period = period_key(due, self.timezone)
        async with self.deps.sessions() as session:
            existing = await find_standup(session=session, channel_id=channel_id, period=period)
        if existing is not None:
            if existing.status != StandupStatus.CLAIMED:
                return StandupResult(channel_id, period, Outcome.ALREADY_DONE, ts=existing.ts)
            expires = existing.lease_expires_at
            if expires is not None and expires >= now:
                return StandupResult(channel_id, period, Outcome.BUSY)
        lateness = now - due
        local_due = due.astimezone(self.timezone)
        if lateness > self.grace:
            reason = (
                f"it was due at {local_due:%H:%M} and it is now {format_duration(lateness)} later, "
                f"past the {self.deps.settings.standup_grace_minutes}-minute grace window"
            )
            return await self.publish(channel_id, period, skip_reason=reason)
        note = None
        if lateness > LATE_AFTER:
            # No claim at all means no process was running at the slot; otherwise an earlier
            # attempt failed or its process died part-way.
            why = "pmteam was not running then" if existing is None else "a first try failed"
            note = (
                f"Posted late: this standup was due at {local_due:%H:%M} "
                f"({format_duration(lateness)} ago; {why})."
            )
        before_slot = last_fire_time(
            schedule.trigger, now=due - timedelta(seconds=1), lookback=timedelta(days=8)
        )
        return await self.publish(
            channel_id, period, note=note, fallback_since=before_slot, day=due
        )

    async def post_now(self, channel_id: str) -> StandupResult:
        """A standup on request: its own (minute) period, with the same exactly-once steps."""
        period = adhoc_period_key(self.clock(), self.timezone)
        return await self.publish(channel_id, period, force=True)

    # -- the steps -------------------------------------------------------------------------

    async def publish(
        self,
        channel_id: str,
        period: str,
        *,
        note: str | None = None,
        fallback_since: datetime | None = None,
        day: datetime | None = None,
        force: bool = False,
        skip_reason: str | None = None,
    ) -> StandupResult:
        with structlog.contextvars.bound_contextvars(channel=channel_id, period=period):
            claim = await self.claim(channel_id, period)
            if not claim.held:
                outcome = Outcome.ALREADY_DONE if claim.result is ClaimResult.DONE else Outcome.BUSY
                return StandupResult(channel_id, period, outcome, ts=claim.standup.ts)
            try:
                return await self._publish_claimed(
                    claim,
                    note=note,
                    fallback_since=fallback_since,
                    day=day,
                    force=force,
                    skip_reason=skip_reason,
                )
            except asyncio.CancelledError:
                # Stopping: hand the claim back so another process can take it over now (it
                # looks in Slack first, in case the post had already gone out).
                assert claim.standup.id is not None
                with contextlib.suppress(Exception):
                    async with self.deps.sessions.begin() as session:
                        await release_standup(
                            session=session,
                            standup_id=claim.standup.id,
                            owner=self.owner,
                            now=self.clock(),
                        )
                raise

    async def _publish_claimed(
        self,
        claim: StandupClaim,
        *,
        note: str | None,
        fallback_since: datetime | None,
        day: datetime | None,
        force: bool,
        skip_reason: str | None,
    ) -> StandupResult:
        standup = claim.standup
        assert standup.id is not None
        channel_id, period = standup.channel_id, standup.period
        if claim.result is ClaimResult.RECLAIMED:
            try:
                ts = await self.find_posted(channel_id, period, claimed_at=standup.created_at)
            except SlackApiError as exc:
                # Without the history we cannot tell whether it went out: leave the claim to
                # run out and look again then, rather than risk a second post.
                log.error("could not read the channel history", error=exc.response.get("error"))
                return StandupResult(channel_id, period, Outcome.FAILED, detail=_slack_error(exc))
            if ts is not None:
                async with self.deps.sessions.begin() as session:
                    await record_standup_posted(
                        session=session,
                        standup_id=standup.id,
                        ts=ts,
                        # The crashed attempt read its data after claiming: from here on,
                        # the next standup may repeat a little but will not miss anything.
                        covered_until=standup.created_at,
                        note="recorded after a restart: the post was found in Slack",
                    )
                log.info("standup found in Slack and recorded", ts=ts)
                return StandupResult(channel_id, period, Outcome.RECOVERED, ts=ts)
        if skip_reason is not None:
            async with self.deps.sessions.begin() as session:
                await record_standup_skipped(
                    session=session, standup_id=standup.id, note=f"skipped: {skip_reason}"
                )
            log.warning("standup skipped", reason=skip_reason)
            return StandupResult(channel_id, period, Outcome.SKIPPED, detail=skip_reason)
        content = await self.compose(channel_id, note=note, fallback_since=fallback_since, day=day)
        if content.empty and self.deps.settings.standup_skip_empty and not force:
            async with self.deps.sessions.begin() as session:
                await record_standup_skipped(
                    session=session,
                    standup_id=standup.id,
                    note="nothing to report (PMTEAM_STANDUP_SKIP_EMPTY=true)",
                )
            log.info("standup skipped: nothing to report")
            return StandupResult(channel_id, period, Outcome.EMPTY, content=content)
        try:
            ts = await self.post(claim, content)
        except StandupLost:
            log.warning("standup claim lost before posting; another process has it")
            return StandupResult(channel_id, period, Outcome.BUSY)
        except SlackApiError as exc:
            # The claim is kept until its lease runs out; then the next check tries again
            # (looking in Slack first), until the grace window closes.
            detail = _slack_error(exc)
            log.error("standup not posted", error=exc.response.get("error"))
            return StandupResult(channel_id, period, Outcome.FAILED, detail=detail)
        await self.record(claim, ts, content)
        log.info("standup posted", ts=ts, late=note is not None, **content.view.counts())
        return StandupResult(channel_id, period, Outcome.POSTED, ts=ts, content=content)

    async def claim(self, channel_id: str, period: str) -> StandupClaim:
        async with self.deps.sessions.begin() as session:
            return await claim_standup(
                session=session,
                channel_id=channel_id,
                period=period,
                owner=self.owner,
                lease=self.lease,
                now=self.clock(),
            )

    async def find_posted(
        self, channel_id: str, period: str, *, claimed_at: datetime
    ) -> str | None:
        """The ts of this standup's message if an earlier attempt posted it: found by the key
        in its metadata, among the channel's messages since the claim was first taken."""
        oldest = f"{(claimed_at - timedelta(minutes=1)).timestamp():.6f}"
        return await find_keyed_message(
            self.deps.client,
            key=standup_post_key(channel_id, period),
            installation=self.deps.installation,
            channel=channel_id,
            oldest=oldest,
            max_pages=HISTORY_PAGES,
        )

    async def post(self, claim: StandupClaim, content: StandupContent) -> str:
        """Post the standup if the claim is still ours; returns the message ts."""
        standup = claim.standup
        assert standup.id is not None
        async with self.deps.sessions.begin() as session:
            held = await renew_standup_lease(
                session=session,
                standup_id=standup.id,
                owner=self.owner,
                lease=self.lease,
                now=self.clock(),
            )
        if not held:
            raise StandupLost(f"standup {standup.channel_id} {standup.period}")
        response = await self.deps.client.chat_postMessage(
            channel=standup.channel_id,
            text=content.text,
            blocks=content.blocks,
            metadata=post_metadata(
                standup_post_key(standup.channel_id, standup.period),
                installation=self.deps.installation,
                period=standup.period,
            ),
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    async def record(self, claim: StandupClaim, ts: str, content: StandupContent) -> None:
        assert claim.standup.id is not None
        async with self.deps.sessions.begin() as session:
            await record_standup_posted(
                session=session,
                standup_id=claim.standup.id,
                ts=ts,
                covered_until=content.until,
                note=content.view.note,
            )

    async def compose(
        self,
        channel_id: str | None,
        *,
        note: str | None = None,
        fallback_since: datetime | None = None,
        day: datetime | None = None,
    ) -> StandupContent:
        """The standup as of now: the time since the channel's previous standup."""
        until = self.clock()
        scope = self.scope_for(channel_id)
        async with self.deps.sessions() as session:
            previous = None
            if channel_id is not None:
                previous = await last_posted_standup(
                    session=session, channel_id=channel_id, before=until
                )
            if previous is not None and previous.posted_at is not None:
                since = previous.posted_at
            else:
                since = fallback_since or until - FIRST_STANDUP_COVERS
            digest = await standup_digest(
                session=session, since=min(since, until), until=until, channel_id=scope
            )
            # "" as the viewer: a channel's readers see no private task's handoffs.
            waiting = await open_handoffs(session=session, viewer="", channel_id=scope)
        view = StandupView(
            digest=digest,
            timezone=self.timezone,
            day=day or until,
            links=await self._permalinks(digest.tasks),
            note=note,
            channel_scope=scope,
            open_handoffs=waiting,
            overdue_after=timedelta(days=self.deps.settings.handoff_nudge_days),
        )
        if not digest.is_empty and self.model is not None:
            narrative = await write_standup_narrative(
                model=self.model, settings=self.agent_settings, data=standup_data(view)
            )
            if narrative is None:
                log.warning("standup goes out without its narrative")
            view = StandupView(
                digest=view.digest,
                timezone=view.timezone,
                day=view.day,
                narrative=narrative,
                links=view.links,
                note=view.note,
                channel_scope=view.channel_scope,
                open_handoffs=view.open_handoffs,
                overdue_after=view.overdue_after,
            )
        if view.day.astimezone(self.timezone).weekday() == 0:
            # The first standup of the week says how the self-scores have held up.
            view = replace(view, calibration=await team_calibration(self.deps, now=until))
        return StandupContent(
            channel_id=channel_id,
            view=view,
            text=standup_fallback_text(view),
            blocks=build_standup_blocks(view),
        )

    async def _permalinks(self, tasks: Sequence[Task]) -> dict[int, str]:
        gate = asyncio.Semaphore(6)

        async def one(task: Task) -> tuple[int, str | None]:
            async with gate:
                link = await permalink(self.deps.client, channel=task.channel_id, ts=task.thread_ts)
            return task.id or 0, link

        found = await asyncio.gather(*(one(task) for task in tasks[:MAX_LINKS]))
        return {task_id: url for task_id, url in found if url}


# --- what /pm standup and pmteam standup call ----------------------------------------------


def standup_channel_for(settings: Settings, channel_id: str | None) -> str | None:
    """Where a standup asked for from `channel_id` belongs: that channel when it has its own
    standup (PMTEAM_STANDUP_CHANNELS), otherwise the coordination channel."""
    if channel_id and channel_id in settings.standup_channels:
        return channel_id
    return settings.coordination_channel or None


async def standup_preview(
    runner: StandupRunner, *, channel_id: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """The standup as it would be posted now, for the ephemeral `/pm standup` answer.

    `channel_id` is where the command was run: a channel with its own standup previews that
    one; anywhere else (or None) previews the coordination channel's."""
    channel = standup_channel_for(runner.deps.settings, channel_id)
    content = await runner.compose(channel)
    where = f"<#{channel}>" if channel else "the coordination channel (not set)"
    preview_note = context(
        f":eyes: Preview, only you see this. `/pm standup post` posts it to {where}."
    )
    return content.text, [*content.blocks, preview_note]


async def post_standup_now(runner: StandupRunner, *, channel_id: str | None) -> str:
    """Post a standup now (`/pm standup post`), to the channel `standup_preview` would show;
    returns a one-line confirmation. Same exactly-once steps, in a period of its own."""
    channel = standup_channel_for(runner.deps.settings, channel_id)
    if not channel:
        return StandupResult(None, None, Outcome.NO_CHANNEL).describe()
    result = await runner.post_now(channel)
    return result.describe()
