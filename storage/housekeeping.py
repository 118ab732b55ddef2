"""Housekeeping: old finished tasks lose their text; the task counts' rows are folded."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ResearchRequest, Task, TaskCountDelta, TaskStatus, ToolCall, Turn
from storage.types import utcnow

PURGED_TEXT = "(removed by the retention policy)"
FINISHED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED)
PURGE_BATCH = 200


async def purge_task_text(
    *,
    session: AsyncSession,
    older_than: timedelta,
    now: datetime | None = None,
    batch: int = PURGE_BATCH,
) -> int:
    """Remove what people wrote and what the bot answered from up to `batch` tasks finished
    before the cutoff: the title and request, each turn's text and answer, the research
    notes and the arguments of its team tool calls. Returns how many tasks it purged; fewer
    than `batch` means none are left.

    Task rows, statuses, their history, reports (scores, red flags) and the usage ledger
    stay, so counts, standups and costs still add up. Open tasks are left alone: a follow-up
    in the thread still needs the conversation.
    """
    cutoff = (now or utcnow()) - older_than
    result = await session.exec(
        select(Task.id)
        .where(
            col(Task.status).in_(FINISHED_STATUSES),
            col(Task.updated_at) < cutoff,
            col(Task.request_text) != PURGED_TEXT,
        )
        .order_by(col(Task.id))
        .limit(batch)
    )
    task_ids = [task_id for task_id in result.all() if task_id is not None]
    if not task_ids:
        return 0
    await session.exec(
        update(Task)
        .where(col(Task.id).in_(task_ids))
        .values(title=PURGED_TEXT, request_text=PURGED_TEXT)
    )
    await session.exec(
        update(Turn)
        .where(col(Turn.task_id).in_(task_ids))
        .values(text=PURGED_TEXT, answer_text=None, exchange=None)
    )
    await session.exec(
        update(ResearchRequest)
        .where(col(ResearchRequest.task_id).in_(task_ids))
        .values(objective=PURGED_TEXT, findings=PURGED_TEXT, request={})
    )
    await session.exec(
        update(ToolCall).where(col(ToolCall.task_id).in_(task_ids)).values(arguments={})
    )
    return len(task_ids)


async def compact_task_counts(*, session: AsyncSession) -> int:
    """Replace the delta rows with one total per status; returns how many rows it folded.

    Safe with concurrent writers and compactors: each compactor re-adds exactly the rows its
    DELETE removed (a row deleted by another compactor is not returned here).
    """
    deleted = await session.exec(
        delete(TaskCountDelta).returning(col(TaskCountDelta.status), col(TaskCountDelta.delta))
    )
    totals: dict[str, int] = {}
    folded = 0
    for status, delta in deleted.all():
        totals[status] = totals.get(status, 0) + delta
        folded += 1
    session.add_all(
        TaskCountDelta(status=status, delta=total) for status, total in totals.items() if total
    )
    await session.flush()
    return folded
