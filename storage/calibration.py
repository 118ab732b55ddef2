"""What happened to finished tasks, next to what their first report predicted: the data the
self-score calibration is computed from (`bot/core/calibration.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Feedback,
    HandoffItem,
    HandoffStatus,
    Report,
    ReportKind,
    Task,
    TaskEvent,
    TaskStatus,
)

REOPENED_NOTE = "reopened"  # the note a Reopen move leaves on its event (bot/core/task_rules.py)
MAX_TASKS = 2_000


@dataclass(frozen=True)
class TaskOutcome:
    """One finished task: its first report's scores and estimate, and what happened."""

    task_id: int
    scores: dict[str, int]  # axis -> score, from the task's first backend-work report
    estimated_time: str | None  # the first estimate any of its reports gave
    estimated_at: datetime | None  # when the report with that estimate was filed
    completed_at: datetime | None  # when it was first marked COMPLETED
    reopened: bool
    blocked_seconds: float  # time spent BLOCKED, 0 if never
    rated_bad: bool | None  # the asker's 👍/👎 on any of its answers (None: no rating)
    handoffs_done: int = 0
    handoffs_declined: int = 0
    handoffs: int = 0  # all its tracked handoffs, open ones included


async def finished_task_outcomes(*, session: AsyncSession, since: datetime) -> list[TaskOutcome]:
    """Tasks completed since `since` (newest first, at most MAX_TASKS), with their outcomes."""
    tasks = list(
        (
            await session.exec(
                select(Task)
                .where(col(Task.status) == TaskStatus.COMPLETED, col(Task.updated_at) >= since)
                .order_by(col(Task.updated_at).desc())
                .limit(MAX_TASKS)
            )
        ).all()
    )
    ids = [task.id for task in tasks if task.id is not None]
    if not ids:
        return []
    reports: dict[int, list[Report]] = {}
    for report in (
        await session.exec(
            select(Report)
            .where(col(Report.task_id).in_(ids), col(Report.kind) == ReportKind.BACKEND_WORK)
            .order_by(col(Report.id))
        )
    ).all():
        reports.setdefault(report.task_id, []).append(report)
    events: dict[int, list[TaskEvent]] = {}
    for event in (
        await session.exec(
            select(TaskEvent)
            .where(col(TaskEvent.task_id).in_(ids), col(TaskEvent.kind) == "status")
            .order_by(col(TaskEvent.id))
        )
    ).all():
        events.setdefault(event.task_id, []).append(event)
    ratings: dict[int, list[Feedback]] = {}
    for feedback in (
        await session.exec(select(Feedback).where(col(Feedback.task_id).in_(ids)))
    ).all():
        ratings.setdefault(feedback.task_id, []).append(feedback)

    handoffs: dict[int, list[HandoffItem]] = {}
    for item in (
        await session.exec(select(HandoffItem).where(col(HandoffItem.task_id).in_(ids)))
    ).all():
        handoffs.setdefault(item.task_id, []).append(item)

    outcomes = []
    for task in tasks:
        assert task.id is not None
        filed = reports.get(task.id)
        if not filed:
            continue  # never reported as backend work: nothing was predicted
        first = filed[0]
        scores = _scores(first.data)
        if not scores:
            continue
        estimating = next((r for r in filed if r.data.get("estimated_time")), None)
        history = events.get(task.id, [])
        asker = [f for f in ratings.get(task.id, []) if f.user_id == task.requester_id]
        outcomes.append(
            TaskOutcome(
                task_id=task.id,
                scores=scores,
                estimated_time=str(estimating.data["estimated_time"]) if estimating else None,
                estimated_at=estimating.created_at if estimating else None,
                completed_at=next(
                    (e.created_at for e in history if e.to_status == TaskStatus.COMPLETED), None
                ),
                reopened=any((e.note or "").startswith(REOPENED_NOTE) for e in history),
                blocked_seconds=_blocked_seconds(history, task.updated_at),
                rated_bad=None if not asker else any(f.rating == "bad" for f in asker),
                handoffs_done=sum(
                    1 for h in handoffs.get(task.id, []) if h.status == HandoffStatus.DONE
                ),
                handoffs_declined=sum(
                    1 for h in handoffs.get(task.id, []) if h.status == HandoffStatus.DECLINED
                ),
                handoffs=len(handoffs.get(task.id, [])),
            )
        )
    return outcomes


def _scores(data: dict[str, object]) -> dict[str, int]:
    scores: dict[str, int] = {}
    for group in ("pm_scores", "self_assessment"):
        values = data.get(group)
        if isinstance(values, dict):
            scores.update({k: v for k, v in values.items() if isinstance(v, int)})
    return scores


def _blocked_seconds(history: list[TaskEvent], end: datetime) -> float:
    total = 0.0
    since: datetime | None = None
    for event in history:
        if event.to_status == TaskStatus.BLOCKED and since is None:
            since = event.created_at
        elif event.to_status != TaskStatus.BLOCKED and since is not None:
            total += (event.created_at - since).total_seconds()
            since = None
    if since is not None:
        total += (end - since).total_seconds()
    return total
