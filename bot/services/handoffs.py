"""Handoffs as tracked work: the owners' DMs, Done / Decline / Assign, Resume, the lists."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.core.handoff_rules import (
    HandoffRefused,
    assign_refusal,
    decide_refusal,
    resume_refusal,
)
from bot.core.storable import storable
from bot.services.deps import Deps, log
from bot.services.home import refresh_homes
from bot.services.task_moves import refresh_report_messages, thread_permalink
from bot.slack.blocks.common import Block, section
from bot.slack.blocks.handoffs import (
    build_all_done_blocks,
    build_handoff_dm_blocks,
    build_handoff_line,
    build_handoffs_list_blocks,
    build_nudge_text,
    handoff_dm_text,
    resume_request,
)
from bot.slack.client import error_name
from bot.slack.posting import Poster, card_key, post_metadata
from storage.handoffs import (
    assign_handoff,
    claim_handoff_nudges,
    decide_handoff,
    get_handoff,
    open_handoffs,
    record_handoff_dm,
    report_handoffs,
    task_handoffs,
)
from storage.intake import record_intake
from storage.models import HandoffItem, HandoffOwner, HandoffStatus, Task, TaskStatus, Visibility
from storage.records import find_post
from storage.tasks import apply_transition
from storage.types import utcnow

# A task waiting on handoffs: when they are all done, its requester may resume it.
RESUMABLE = (TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED)
RESUMED_NOTE = "resumed: the handoffs are done"


def dm_key(handoff: HandoffItem) -> str:
    """One DM per handoff and owner: a retried turn, or a second click, never sends two."""
    return f"handoff:{handoff.id}:dm:{handoff.owner_id}"


def all_done_key(task_id: int, handoffs: Sequence[HandoffItem]) -> str:
    return f"task:{task_id}:handoffs-done:{max(h.id or 0 for h in handoffs)}"


@dataclass(frozen=True)
class HandoffChange:
    """A handoff after someone decided or assigned it, with its task; `all_done` lists the
    task's handoffs when this change finished the last of them and the task can resume."""

    handoff: HandoffItem
    task: Task
    actor: str
    all_done: list[HandoffItem] | None = None


def _poster(deps: Deps) -> Poster:
    return Poster(client=deps.client, sessions=deps.sessions, installation=deps.installation)


async def send_handoff_dm(
    deps: Deps,
    handoff: HandoffItem,
    task: Task,
    permalink: str | None,
    *,
    poster: Poster | None = None,
    retried: bool = True,
) -> None:
    """DM a person's handoff to them once (keyed, so a retry finds the DM it sent), and
    remember where it is so a decision can update it. A group's or nobody's: no DM."""
    if handoff.owner_kind != HandoffOwner.USER or not handoff.owner_id or handoff.id is None:
        return
    if task.visibility == Visibility.PRIVATE:
        return  # asked privately: nobody else hears of it until the requester shares it
    opened = await deps.client.conversations_open(users=handoff.owner_id)
    channel = str((opened.get("channel") or {}).get("id") or handoff.owner_id)
    ts = await (poster or _poster(deps)).post_keyed(
        key=dm_key(handoff),
        kind="handoff-dm",
        turn_id=handoff.turn_id,
        channel=channel,
        text=handoff_dm_text(handoff, task),
        blocks=build_handoff_dm_blocks(handoff, task, permalink),
        retried=retried,
        since=handoff.created_at,
    )
    if (handoff.dm_channel, handoff.dm_ts) == (channel, ts):
        return  # sent and remembered before
    async with deps.sessions.begin() as session:
        await record_handoff_dm(session=session, handoff_id=handoff.id, channel=channel, ts=ts)
    deps.metrics.inc("pmteam_handoffs_total", event="dm")


async def notify_report_handoffs(
    deps: Deps,
    *,
    task: Task,
    report_id: int,
    permalink: str | None,
    poster: Poster | None = None,
    retried: bool,
) -> None:
    """A stored report's new handoffs, each DMed to its owner once. A DM Slack refuses is
    logged; the card still shows the handoff and its owner."""
    async with deps.sessions() as session:
        handoffs = await report_handoffs(session=session, report_id=report_id)
    for handoff in handoffs:
        if handoff.status != HandoffStatus.OPEN:
            continue
        try:
            await send_handoff_dm(deps, handoff, task, permalink, poster=poster, retried=retried)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("a handoff DM was not sent", handoff=handoff.id, error=error_name(exc))


async def decide(
    deps: Deps,
    *,
    handoff_id: int,
    user_id: str,
    status: HandoffStatus,
    reason: str | None = None,
) -> HandoffChange:
    """Mark a handoff done or declined, if this person may; else HandoffRefused."""
    if reason is not None:
        reason = storable(reason).text
    async with deps.sessions.begin() as session:
        handoff = await get_handoff(session=session, handoff_id=handoff_id, for_update=True)
        if handoff is None:
            raise HandoffRefused("That handoff no longer exists.")
        refusal = decide_refusal(handoff=handoff, user_id=user_id, pm_users=deps.settings.pm_users)
        if refusal is not None:
            raise HandoffRefused(refusal)
        if not await decide_handoff(
            session=session,
            handoff_id=handoff_id,
            status=status,
            decided_by=user_id,
            reason=reason,
        ):
            raise HandoffRefused("Someone decided that handoff a moment ago.")
        handoff = await get_handoff(session=session, handoff_id=handoff_id)
        task = await session.get(Task, handoff.task_id) if handoff else None
        assert handoff is not None and task is not None
        every = await task_handoffs(session=session, task_id=task.id or 0)
    finished = all(h.status == HandoffStatus.DONE for h in every)
    resumable = status == HandoffStatus.DONE and finished and task.status in RESUMABLE
    return HandoffChange(
        handoff=handoff, task=task, actor=user_id, all_done=every if resumable else None
    )


async def assign(deps: Deps, *, handoff_id: int, user_id: str, owner_id: str) -> HandoffChange:
    """Give an open handoff to a person (a PM's choice); else HandoffRefused."""
    async with deps.sessions.begin() as session:
        handoff = await get_handoff(session=session, handoff_id=handoff_id, for_update=True)
        if handoff is None:
            raise HandoffRefused("That handoff no longer exists.")
        refusal = assign_refusal(handoff=handoff, user_id=user_id, pm_users=deps.settings.pm_users)
        if refusal is not None:
            raise HandoffRefused(refusal)
        if handoff.owner_kind == HandoffOwner.USER and handoff.owner_id == owner_id:
            raise HandoffRefused(f"It is <@{owner_id}>'s already.")
        await assign_handoff(
            session=session,
            handoff_id=handoff_id,
            owner_kind=HandoffOwner.USER,
            owner_id=owner_id,
        )
        handoff = await get_handoff(session=session, handoff_id=handoff_id)
        task = await session.get(Task, handoff.task_id) if handoff else None
        assert handoff is not None and task is not None
    return HandoffChange(handoff=handoff, task=task, actor=user_id)


async def after_change(deps: Deps, change: HandoffChange) -> None:
    """Everything Slack shows after a handoff changes: the owner's DM (a decision) or a DM to
    the new owner (an assignment), the card, a line in the task's thread and the card's, and,
    when the last one is done, the line with Resume."""
    handoff, task = change.handoff, change.task
    assert task.id is not None
    link = await thread_permalink(deps, task)
    if handoff.status == HandoffStatus.OPEN:
        try:
            await send_handoff_dm(deps, handoff, task, link)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("a handoff DM was not sent", handoff=handoff.id, error=error_name(exc))
    elif handoff.dm_channel and handoff.dm_ts:
        try:
            await deps.client.chat_update(
                channel=handoff.dm_channel,
                ts=handoff.dm_ts,
                text=handoff_dm_text(handoff, task),
                blocks=build_handoff_dm_blocks(handoff, task, link),
            )
        except SlackApiError as exc:
            log.warning("could not update the handoff DM", error=exc.response.get("error"))
    await refresh_report_messages(deps, task_id=task.id)
    line = build_handoff_line(task, handoff, change.actor)
    places = [(task.channel_id, task.thread_ts)]
    card = await _card_post(deps, task)
    if card is not None:
        places.append(card)
    for channel, thread_ts in places:
        try:
            await deps.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=line, unfurl_links=False
            )
        except SlackApiError as exc:
            log.warning("could not say the handoff change", error=exc.response.get("error"))
    if change.all_done:
        blocks = build_all_done_blocks(task, change.all_done)
        try:
            await _poster(deps).post_keyed(
                key=all_done_key(task.id, change.all_done),
                kind="handoffs-done",
                turn_id=None,
                channel=task.channel_id,
                thread_ts=task.thread_ts,
                text=str(blocks[0]["text"]["text"]),
                blocks=blocks,
                retried=True,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not say the handoffs are done", error=error_name(exc))
    await refresh_homes(deps, include=[])


async def _card_post(deps: Deps, task: Task) -> tuple[str, str] | None:
    """Where the task's card is (channel, ts), when it was posted and is not private."""
    if task.visibility == Visibility.PRIVATE or task.id is None:
        return None
    async with deps.sessions() as session:
        post = await find_post(session=session, key=card_key(task.id))
    if post is None or not post.ts:
        return None
    return post.channel_id, post.ts


async def load_handoff(deps: Deps, *, handoff_id: int) -> tuple[HandoffItem, Task] | None:
    async with deps.sessions() as session:
        handoff = await get_handoff(session=session, handoff_id=handoff_id)
        task = await session.get(Task, handoff.task_id) if handoff else None
    return (handoff, task) if handoff is not None and task is not None else None


@dataclass(frozen=True)
class Resumed:
    task: Task
    turn_id: int | None


async def resume(deps: Deps, *, task_id: int, user_id: str, message_ts: str | None) -> Resumed:
    """Queue a follow-up turn on a task whose handoffs are all done, as Reopen does; else
    HandoffRefused."""
    async with deps.sessions.begin() as session:
        task = await session.get(Task, task_id, with_for_update=True, populate_existing=True)
        if task is None:
            raise HandoffRefused(f"T-{task_id} doesn't exist.")
        refusal = resume_refusal(task=task, user_id=user_id, pm_users=deps.settings.pm_users)
        if refusal is not None:
            raise HandoffRefused(refusal)
        if task.status not in RESUMABLE:
            raise HandoffRefused(f"{task.ref} is {task.status.replace('_', ' ')} now; no need.")
        handoffs = await task_handoffs(session=session, task_id=task_id)
        if not handoffs or any(h.status != HandoffStatus.DONE for h in handoffs):
            raise HandoffRefused(f"{task.ref} still waits on a handoff.")
        apply_transition(
            session=session,
            task=task,
            to_status=TaskStatus.QUEUED,
            actor=user_id,
            note=RESUMED_NOTE,
        )
        intake = await record_intake(
            session=session,
            team_id=task.team_id,
            channel_id=task.channel_id,
            thread_ts=task.thread_ts,
            message_ts=message_ts or f"{time.time():.6f}",
            user_id=user_id,
            text=resume_request(handoffs),
            source="reopen",
        )
    return Resumed(task=intake.task, turn_id=intake.turn.id)


async def said_resumed(
    deps: Deps, resumed: Resumed, *, user_id: str, channel: str | None, ts: str | None
) -> None:
    """The Resume line loses its button and says who resumed the task."""
    if not channel or not ts:
        return
    text = f":arrow_forward: {resumed.task.ref}: <@{user_id}> resumed it; the handoffs are done."
    try:
        await deps.client.chat_update(channel=channel, ts=ts, text=text, blocks=[section(text)])
    except SlackApiError as exc:
        log.warning("could not update the Resume line", error=exc.response.get("error"))


async def nudge_handoff_owners(deps: Deps, *, now: datetime | None = None) -> list[int]:
    """Remind each owner once of a handoff still open after PMTEAM_HANDOFF_NUDGE_DAYS; returns
    the handoffs reminded. Claimed in the database first, so replicas never send two (a
    reminder Slack refuses is not tried again)."""
    older_than = timedelta(days=deps.settings.handoff_nudge_days)
    async with deps.sessions.begin() as session:
        claimed = await claim_handoff_nudges(session=session, older_than=older_than, now=now)
    nudged: list[int] = []
    for handoff, task in claimed:
        assert handoff.id is not None and handoff.owner_id is not None
        if task.visibility == Visibility.PRIVATE:
            continue
        link = await thread_permalink(deps, task)
        try:
            await deps.client.chat_postMessage(
                channel=handoff.dm_channel or handoff.owner_id,
                text=build_nudge_text(handoff, task, link),
                metadata=post_metadata(
                    f"handoff:{handoff.id}:nudge", installation=deps.installation
                ),
                unfurl_links=False,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("handoff reminder not sent", handoff=handoff.id, error=error_name(exc))
            continue
        deps.metrics.inc("pmteam_handoffs_total", event="reminder")
        nudged.append(handoff.id)
    return nudged


async def handoffs_answer(
    deps: Deps, *, viewer: str, owner_id: str | None, everyone: bool
) -> list[Block]:
    """`/pm handoffs [@person|all]`: the open handoffs, oldest first, overdue ones marked."""
    async with deps.sessions() as session:
        rows = await open_handoffs(
            session=session, owner_id=None if everyone else owner_id or viewer, viewer=viewer
        )
    if everyone:
        title = "Open handoffs"
    elif owner_id and owner_id != viewer:
        title = f"Waiting on <@{owner_id}>"
    else:
        title = "Waiting on you"
    return build_handoffs_list_blocks(
        rows,
        title=title,
        now=utcnow(),
        overdue_after=timedelta(days=deps.settings.handoff_nudge_days),
        show_owner=everyone,
    )
