"""The task buttons: authorised moves with their history, and the report messages they update."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.task_rules import (
    REOPENED_NOTE,
    TARGET_STATUS,
    MoveRefused,
    TaskMove,
    acknowledged_by,
    move_refusal,
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
    build_report_blocks,
    report_fallback_text,
    with_activity,
)
from bot.slack.client import permalink
from bot.slack.posting import post_key
from storage.intake import record_intake
from storage.models import Report, Task, TaskStatus
from storage.queries import latest_report, task_events
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
            await record_task_event(
                session=session, task_id=task.id, kind="acknowledged", actor=user_id
            )
            return MoveOutcome(task=task, move=move)
        if move is TaskMove.REOPEN:
            apply_transition(
                session=session,
                task=task,
                to_status=TaskStatus.QUEUED,
                actor=user_id,
                note=REOPENED_NOTE,
            )
            # The same transaction: the task is queued now, so intake adds only the turn.
            intake = await record_intake(
                session=session,
                team_id=task.team_id,
                channel_id=task.channel_id,
                thread_ts=task.thread_ts,
                message_ts=reopen_ts or f"{time.time():.6f}",
                user_id=user_id,
                text=f"Please continue this task (reopened by <@{user_id}>).",
                source="reopen",
            )
            return MoveOutcome(task=intake.task, move=move, reopened_turn_id=intake.turn.id)
        apply_transition(
            session=session,
            task=task,
            to_status=TARGET_STATUS[move],
            actor=user_id,
            note=reason if move is TaskMove.MARK_BLOCKED else "marked done",
        )
        return MoveOutcome(task=task, move=move)


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
    async with deps.sessions() as session:
        task = await session.get(Task, task_id)
        report = await latest_report(session=session, task_id=task_id)
        if task is None or report is None:
            return None
        events = await task_events(session=session, task_id=task_id, since=report.created_at)
        post = await find_post(session=session, key=post_key(report.turn_id, "report"))
    parsed = stored_report(report)
    if parsed is None:
        return None
    blocks = build_report_blocks(parsed, task, await thread_permalink(deps, task), gaps=report.gaps)
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
    if origin.is_ephemeral and respond is not None and respond.response_url:
        detail = await load_task_detail(sessions=deps.sessions, task_id=task_id)
        if detail is not None:
            blocks = build_task_detail_blocks(detail, await thread_permalink(deps, detail.task))
            try:
                await respond(text=plain_fallback(blocks), blocks=blocks, replace_original=True)
            except Exception:
                log.warning("could not refresh the status answer")
    await refresh_homes(deps, include=[user_id] if origin.channel_id is None else [])
