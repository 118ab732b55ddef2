"""The buttons under an answer: the assessment in full, Share with PM, 👍/👎, and Stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from bot.core.access import private_refusal
from bot.services.deps import Deps, log
from bot.services.task_moves import post_card, report_card
from bot.slack.blocks.common import stored_report
from bot.slack.blocks.report import build_details_modal, build_summary_blocks, summary_text
from storage.models import Rating, Report, Task, Turn, Visibility
from storage.records import record_feedback, request_stop
from storage.tasks import share_task


@dataclass(frozen=True)
class Refused:
    """What to tell the person who pressed, when the press does nothing."""

    text: str


async def _turn_and_task(deps: Deps, turn_id: int) -> tuple[Turn, Task] | None:
    async with deps.sessions() as session:
        turn = await session.get(Turn, turn_id)
        task = await session.get(Task, turn.task_id) if turn is not None else None
    return (turn, task) if turn is not None and task is not None else None


async def turn_details(deps: Deps, *, turn_id: int, user_id: str) -> dict[str, Any] | Refused:
    """The Details modal of an answer: its whole assessment and red flags."""
    found = await _turn_and_task(deps, turn_id)
    if found is None:
        return Refused("That answer is no longer on record.")
    _, task = found
    hidden = private_refusal(
        user_id=user_id, requester_id=task.requester_id, visibility=task.visibility, ref=task.ref
    )
    if hidden is not None:
        return Refused(hidden)
    async with deps.sessions() as session:
        rows = await session.exec(select(Report).where(col(Report.turn_id) == turn_id))
        report = rows.first()
    parsed = stored_report(report) if report is not None else None
    if report is None or parsed is None:
        return Refused("That answer has no assessment to show.")
    return build_details_modal(parsed, task, report.gaps)


async def share_with_pm(deps: Deps, *, task_id: int, user_id: str) -> str:
    """Share a private task with the PM: its card goes to the coordination channel, saying
    it was asked privately. Returns what to tell the requester."""
    coordination = deps.settings.coordination_channel
    if not coordination:
        return "There is no coordination channel to share with (PMTEAM_COORDINATION_CHANNEL)."
    async with deps.sessions.begin() as session:
        task = await session.get(Task, task_id, with_for_update=True, populate_existing=True)
        if task is None:
            return f"T-{task_id} doesn't exist any more."
        if user_id != task.requester_id:
            return f"Only <@{task.requester_id}>, who asked for {task.ref}, can share it."
        if not await share_task(session=session, task=task, actor=user_id):
            return f"{task.ref} is already shared with the PM in <#{coordination}>."
        ref = task.ref
    if await report_card(deps, task_id=task_id) is None:
        return f"{ref} is shared; its card goes to <#{coordination}> with its next report."
    await post_card(deps, task_id=task_id)
    log.info("task shared with the PM", task=ref, user=user_id)
    return f":white_check_mark: Shared {ref} with the PM in <#{coordination}>."


async def refresh_summary(deps: Deps, *, turn_id: int, channel: str, ts: str) -> None:
    """Redraw an answer's summary line after its task was shared (no more Share button)."""
    found = await _turn_and_task(deps, turn_id)
    async with deps.sessions() as session:
        rows = await session.exec(select(Report).where(col(Report.turn_id) == turn_id))
        report = rows.first()
    parsed = stored_report(report) if report is not None else None
    if found is None or report is None or parsed is None:
        return
    _, task = found
    coordination = deps.settings.coordination_channel
    await deps.client.chat_update(
        channel=channel,
        ts=ts,
        text=summary_text(
            parsed,
            coordination=coordination,
            private=task.visibility == Visibility.PRIVATE,
            gaps=report.gaps,
        ),
        blocks=build_summary_blocks(
            parsed, task=task, turn_id=turn_id, coordination=coordination, gaps=report.gaps
        ),
    )


async def rate_answer(deps: Deps, *, turn_id: int, user_id: str, rating: Rating) -> str:
    found = await _turn_and_task(deps, turn_id)
    if found is None:
        return "That answer is no longer on record."
    turn, task = found
    assert turn.id is not None and task.id is not None
    async with deps.sessions.begin() as session:
        await record_feedback(
            session=session, turn_id=turn.id, task_id=task.id, user_id=user_id, rating=rating
        )
    deps.metrics.inc("pmteam_answer_ratings_total", rating=rating.value)
    log.info("answer rated", task=task.ref, turn=turn.seq, rating=rating.value)
    return "Thanks, noted. It shows in the standup's answer ratings."


async def stop_turn(deps: Deps, *, turn_id: int, user_id: str) -> Refused | None:
    """Ask the running turn to stop; None when it will, else why not."""
    found = await _turn_and_task(deps, turn_id)
    if found is None:
        return Refused("That answer is no longer on record.")
    turn, task = found
    if user_id not in (turn.user_id, task.requester_id):
        return Refused(f"Only <@{turn.user_id}>, who asked, can stop this answer.")
    async with deps.sessions.begin() as session:
        asked = await request_stop(session=session, turn_id=turn_id, user_id=user_id)
    if not asked:
        return Refused("That answer has already finished (or is stopping).")
    deps.stops.signal(turn_id)  # at once when this replica runs it; the others poll
    log.info("stop requested", task=task.ref, turn=turn.seq, user=user_id)
    return None
