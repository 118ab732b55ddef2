"""The task buttons: authorised moves with their history, and the report messages they update."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.storable import storable
from bot.core.task_rules import (
    REOPENED_NOTE,
    TARGET_STATUS,
    MoveRefused,
    TaskMove,
    acknowledged_by,
    move_refusal,
    state_moves,
)
from bot.services.deps import Deps, Sessions, log
from bot.services.home import publish_home, refresh_homes
from bot.services.status import load_task_detail
from bot.slack.blocks.common import plain_fallback, stored_report
from bot.slack.blocks.modal import ClickOrigin
from bot.slack.blocks.pm import build_task_detail_blocks
from bot.slack.blocks.report import (
    ACTION_ACKNOWLEDGE,
    ACTION_MARK_BLOCKED,
    ACTION_MARK_DONE,
    ACTION_REOPEN,
    build_activity_block,
    build_move_line,
    build_report_blocks,
    card_status,
    report_fallback_text,
    research_line,
    with_activity,
)
from bot.slack.client import permalink
from bot.slack.posting import Poster, card_key, post_key
from storage.handoffs import task_handoffs
from storage.intake import record_intake
from storage.models import Report, Task, TaskEvent, TaskStatus, Visibility
from storage.queries import first_reported_task, latest_report, research_done, task_events
from storage.records import find_post
from storage.tasks import (
    apply_transition,
    record_task_event,
)

PERMALINK_TIMEOUT = 1.0


MOVE_FOR_ACTION: dict[str, TaskMove] = {
    ACTION_ACKNOWLEDGE: TaskMove.ACKNOWLEDGE,
    ACTION_MARK_BLOCKED: TaskMove.MARK_BLOCKED,
    ACTION_MARK_DONE: TaskMove.MARK_DONE,
    ACTION_REOPEN: TaskMove.REOPEN,
}


@dataclass(frozen=True)
class MoveOutcome:
    task: Task
    move: TaskMove
    event: TaskEvent
    reopened_turn_id: int | None = None


async def check_move(
    *, sessions: Sessions, pm_users: Sequence[str], task_id: int, move: TaskMove, user_id: str
) -> Task:
    """The task, if this move is allowed now (e.g. before asking for a reason); else MoveRefused."""
    async with sessions() as session:
        task = await session.get(Task, task_id)
        if task is None:
            raise MoveRefused(f"T-{task_id} doesn't exist.")
        refusal = await _refusal_now(
            session=session, task=task, move=move, user_id=user_id, pm_users=pm_users
        )
    if refusal is not None:
        raise MoveRefused(refusal)
    return task


async def _refusal_now(
    *, session: AsyncSession, task: Task, move: TaskMove, user_id: str, pm_users: Sequence[str]
) -> str | None:
    """Why this move can't be made now (who asks, the status, the last report), or None."""
    assert task.id is not None
    report = await latest_report(session=session, task_id=task.id)
    events = (
        await task_events(session=session, task_id=task.id, since=report.created_at)
        if report is not None
        else []
    )
    return move_refusal(
        move=move,
        task=task,
        user_id=user_id,
        pm_users=pm_users,
        report=report,
        acknowledged_by=acknowledged_by(events),
    )


async def apply_move(
    *,
    sessions: Sessions,
    pm_users: Sequence[str],
    task_id: int,
    move: TaskMove,
    user_id: str,
    reason: str | None = None,
    reopen_ts: str | None = None,
) -> MoveOutcome:
    """Check and make the move in one transaction, recording the TaskEvent with its actor.

    Reopen queues a new turn in the task's thread (`reopen_ts` is its unique message key,
    e.g. the click's action_ts), so the engineer continues through the normal pipeline.
    """
    if reason is not None:
        reason = storable(reason).text  # a NUL typed into the modal must not fail the write
    async with sessions.begin() as session:
        # Lock the row (PostgreSQL) and read it as it is now, not a copy cached earlier.
        task = await session.get(Task, task_id, with_for_update=True, populate_existing=True)
        if task is None:
            raise MoveRefused(f"T-{task_id} doesn't exist.")
        refusal = await _refusal_now(
            session=session, task=task, move=move, user_id=user_id, pm_users=pm_users
        )
        if refusal is not None:
            raise MoveRefused(refusal)
        assert task.id is not None
        if move is TaskMove.ACKNOWLEDGE:
            event = await record_task_event(
                session=session, task_id=task.id, kind="acknowledged", actor=user_id
            )
            return MoveOutcome(task=task, move=move, event=event)
        if move is TaskMove.REOPEN:
            if not reason:
                raise MoveRefused("Say what is missing, so the engineer knows what to do next.")
            event = apply_transition(
                session=session,
                task=task,
                to_status=TaskStatus.QUEUED,
                actor=user_id,
                note=f"{REOPENED_NOTE}: {reason}",
            )
            # The same transaction: the task is queued now, so intake adds only the turn.
            intake = await record_intake(
                session=session,
                team_id=task.team_id,
                channel_id=task.channel_id,
                thread_ts=task.thread_ts,
                message_ts=reopen_ts or f"{time.time():.6f}",
                user_id=user_id,
                # The reason is the next turn's request; the task keeps its title.
                text=reason,
                source="reopen",
            )
            return MoveOutcome(
                task=intake.task, move=move, event=event, reopened_turn_id=intake.turn.id
            )
        event = apply_transition(
            session=session,
            task=task,
            to_status=TARGET_STATUS[move],
            actor=user_id,
            note=reason if move is TaskMove.MARK_BLOCKED else "marked done",
        )
        return MoveOutcome(task=task, move=move, event=event)


async def thread_permalink(deps: Deps, task: Task) -> str | None:
    """The thread's link if Slack gives it quickly; pages still work without it."""
    return await permalink(
        deps.client, channel=task.channel_id, ts=task.thread_ts, timeout=PERMALINK_TIMEOUT
    )


@dataclass(frozen=True)
class ReportCard:
    """The newest report of a task as the coordination channel shows it, with its activity."""

    task: Task
    report: Report
    text: str
    blocks: list[dict[str, object]]
    posted_channel: str | None
    posted_ts: str | None


async def report_card(deps: Deps, *, task_id: int) -> ReportCard | None:
    """The task's card as it should read now: the newest report's content, the task's status
    and the buttons it allows, and who did what since."""
    async with deps.sessions() as session:
        task = await session.get(Task, task_id)
        report = await latest_report(session=session, task_id=task_id)
        if task is None or report is None:
            return None
        events = await task_events(session=session, task_id=task_id, since=report.created_at)
        named = await first_reported_task(session=session, task_id=task_id)
        requests, live_sources = await research_done(session=session, turn_id=report.turn_id)
        handoffs = await task_handoffs(session=session, task_id=task_id)
        # The card; a task reported before cards were kept has a post per report instead.
        post = await find_post(session=session, key=card_key(task_id)) or await find_post(
            session=session, key=post_key(report.turn_id, "report")
        )
    parsed = stored_report(report)
    if parsed is None:
        return None
    if named:  # the card keeps the task's first name, whatever a follow-up asked
        parsed = parsed.model_copy(update={"task": named})
    blocks = build_report_blocks(
        parsed,
        task,
        await thread_permalink(deps, task),
        gaps=report.gaps,
        status=card_status(task, parsed),
        moves=state_moves(task, has_report=True, acknowledged=acknowledged_by(events) is not None),
        research=research_line(requests, live_sources),
        handoffs=handoffs,
    )
    return ReportCard(
        task=task,
        report=report,
        text=report_fallback_text(parsed, task, report.gaps),
        blocks=with_activity(blocks, task, build_activity_block(task, events)),
        posted_channel=post.channel_id if post else None,
        posted_ts=post.ts if post else None,
    )


async def refresh_report_messages(
    deps: Deps, *, task_id: int, clicked: ClickOrigin | None = None
) -> None:
    """Show who did what on the task's report: its post in the coordination channel, and the
    message the button was clicked on when that is another (e.g. a repost)."""
    card = await report_card(deps, task_id=task_id)
    if card is None:
        return
    targets: list[tuple[str, str]] = []
    if card.posted_channel and card.posted_ts:
        targets.append((card.posted_channel, card.posted_ts))
    if (
        clicked is not None
        and clicked.channel_id
        and clicked.message_ts
        and not clicked.is_ephemeral
        and (clicked.channel_id, clicked.message_ts) not in targets
    ):
        targets.append((clicked.channel_id, clicked.message_ts))
    for channel, ts in targets:
        try:
            await deps.client.chat_update(
                channel=channel, ts=ts, text=card.text, blocks=card.blocks
            )
        except SlackApiError as exc:
            log.warning("could not update the report message", error=exc.response.get("error"))


async def tell(
    deps: Deps,
    *,
    user_id: str,
    origin: ClickOrigin,
    respond: AsyncRespond | None,
    text: str,
) -> None:
    """Say something only the clicker sees: under the message, or on their App Home."""
    if respond is not None and respond.response_url:
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
            return
        except Exception:  # an expired response_url: fall back to a plain ephemeral message
            log.warning("could not answer through the response_url")
    if origin.channel_id:
        try:
            await deps.client.chat_postEphemeral(channel=origin.channel_id, user=user_id, text=text)
            return
        except SlackApiError as exc:
            log.warning("could not post an ephemeral message", error=exc.response.get("error"))
    await publish_home(deps, user_id=user_id, notice=text)


async def after_move(
    deps: Deps,
    *,
    outcome: MoveOutcome,
    user_id: str,
    origin: ClickOrigin,
    respond: AsyncRespond | None,
) -> None:
    """Everything Slack shows after a move: the report message, the clicked status answer,
    and the App Home boards that are open."""
    task_id = outcome.task.id
    assert task_id is not None
    await refresh_report_messages(deps, task_id=task_id, clicked=origin)
    await say_move(deps, outcome)
    if origin.is_ephemeral and respond is not None and respond.response_url:
        await refresh_status_view(deps, task_id=task_id, user_id=user_id, respond=respond)
    await refresh_homes(deps, include=[user_id] if origin.channel_id is None else [])


async def refresh_status_view(
    deps: Deps, *, task_id: int, user_id: str, respond: AsyncRespond
) -> None:
    """Redraw a `/pm status T-n` answer with the task as it is now, buttons for this viewer."""
    detail = await load_task_detail(sessions=deps.sessions, task_id=task_id)
    if detail is not None:
        moves = await viewer_moves(deps, task=detail.task, user_id=user_id)
        blocks = build_task_detail_blocks(detail, await thread_permalink(deps, detail.task), moves)
        try:
            await respond(text=plain_fallback(blocks), blocks=blocks, replace_original=True)
        except Exception:
            log.warning("could not refresh the status answer")


async def viewer_moves(deps: Deps, *, task: Task, user_id: str) -> list[TaskMove]:
    """The moves this person may make on the task now: the buttons their view shows."""
    async with deps.sessions() as session:
        allowed = []
        for move in TaskMove:
            refusal = await _refusal_now(
                session=session,
                task=task,
                move=move,
                user_id=user_id,
                pm_users=deps.settings.pm_users,
            )
            if refusal is None:
                allowed.append(move)
    return allowed


async def say_move(deps: Deps, outcome: MoveOutcome) -> None:
    """A person's move, said where people follow the task: the card's thread, and for a
    Reopen the task's own thread (where the work goes on)."""
    task = outcome.task
    assert task.id is not None
    line = build_move_line(task, outcome.event)
    places: list[tuple[str, str]] = []
    if outcome.move is TaskMove.REOPEN:
        places.append((task.channel_id, task.thread_ts))
    async with deps.sessions() as session:
        card = await find_post(session=session, key=card_key(task.id))
    if card is not None and card.ts and task.visibility != Visibility.PRIVATE:
        places.append((card.channel_id, card.ts))
    for channel, thread_ts in places:
        try:
            await deps.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=line, unfurl_links=False
            )
        except SlackApiError as exc:
            log.warning("could not say the move in a thread", error=exc.response.get("error"))


async def post_card(deps: Deps, *, task_id: int) -> None:
    """Post the task's card to the coordination channel, or bring it up to date if it is
    there already (a card that could not be posted earlier). Slack's errors are raised."""
    channel = deps.settings.coordination_channel
    card = await report_card(deps, task_id=task_id)
    if not channel or card is None or card.task.visibility == Visibility.PRIVATE:
        return
    if card.posted_channel and card.posted_ts:
        await deps.client.chat_update(
            channel=card.posted_channel, ts=card.posted_ts, text=card.text, blocks=card.blocks
        )
        return
    await Poster(
        client=deps.client, sessions=deps.sessions, installation=deps.installation
    ).post_keyed(
        key=card_key(task_id),
        kind="card",
        turn_id=card.report.turn_id,
        channel=channel,
        text=card.text,
        blocks=card.blocks,
        retried=True,  # an earlier try may have posted it and lost the answer
    )
