"""Retention: the message text of old, finished tasks is removed; statuses and counts stay."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ResearchRequest, Task, TaskStatus, Turn
from storage.types import utcnow

PURGED_TEXT = "(removed by the retention policy)"
FINISHED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED)


async def purge_task_text(
    *,
    session: AsyncSession,
    older_than: timedelta,
    now: datetime | None = None,
    batch: int = 200,
) -> int:
    """Remove what people wrote and what the bot answered from tasks finished before the
    cutoff: the title and request, each turn's text and answer, and the research notes.

    Task rows, statuses, their history, reports (scores, red flags) and the usage ledger
    stay, so counts, standups and costs still add up. Open tasks are left alone: a follow-up
    in the thread still needs the conversation. Returns how many tasks were purged.
    """
    cutoff = (now or utcnow()) - older_than
    purged = 0
    while True:
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
            await session.commit()
            return purged
        await session.exec(
            update(Task)
            .where(col(Task.id).in_(task_ids))
            .values(title=PURGED_TEXT, request_text=PURGED_TEXT)
        )
        await session.exec(
            update(Turn)
            .where(col(Turn.task_id).in_(task_ids))
            .values(text=PURGED_TEXT, answer_text=None)
        )
        await session.exec(
            update(ResearchRequest)
            .where(col(ResearchRequest.task_id).in_(task_ids))
            .values(objective=PURGED_TEXT, findings=PURGED_TEXT, request={})
        )
        await session.commit()
        purged += len(task_ids)
        if len(task_ids) < batch:
            return purged
