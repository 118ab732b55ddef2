"""Who may move a task, and which moves its state allows now: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from storage.models import Report, Task, TaskEvent, TaskStatus, Visibility
from storage.tasks import IllegalTransition, can_transition, describe_status


class TaskMove(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    MARK_BLOCKED = "mark_blocked"
    MARK_DONE = "mark_done"
    REOPEN = "reopen"


TARGET_STATUS: dict[TaskMove, TaskStatus] = {
    TaskMove.MARK_BLOCKED: TaskStatus.BLOCKED,
    TaskMove.MARK_DONE: TaskStatus.COMPLETED,
    TaskMove.REOPEN: TaskStatus.QUEUED,
}
# While a turn is queued or running, its report will set the status: a person's move then
# would be overwritten (or make the finishing turn's move illegal).
BUSY = frozenset({TaskStatus.QUEUED, TaskStatus.WORKING})
REOPENED_NOTE = "reopened"


class MoveRefused(Exception):
    """A move this person may not make, or the task can't make; the message is for them."""


def may_change_status(*, user_id: str, task: Task, pm_users: Sequence[str]) -> bool:
    """The requester and the PMs may change a task's status; everyone when no PMs are set."""
    return not pm_users or user_id in pm_users or user_id == task.requester_id


def move_refusal(
    *,
    move: TaskMove,
    task: Task,
    user_id: str,
    pm_users: Sequence[str],
    report: Report | None,
    acknowledged_by: str | None,
) -> str | None:
    """Why `user_id` can't make this move on `task` now, in a sentence; None when they can."""
    if task.visibility == Visibility.PRIVATE and user_id != task.requester_id:
        return f"{task.ref} was asked privately; only the person who asked can move it."
    if move is TaskMove.ACKNOWLEDGE:
        if pm_users and user_id not in pm_users:
            return "Only a project manager (PMTEAM_PM_USERS) can acknowledge reports."
        if report is None:
            return f"{task.ref} has no report to acknowledge yet."
        if acknowledged_by is not None:
            return f"{task.ref}'s latest report was already acknowledged by <@{acknowledged_by}>."
        return None
    if not may_change_status(user_id=user_id, task=task, pm_users=pm_users):
        return (
            f"Only <@{task.requester_id}> (who asked for {task.ref}) or a project manager "
            "can change its status."
        )
    status = TaskStatus(task.status)
    if status in BUSY:
        if move is TaskMove.REOPEN:
            return f"{task.ref} is already {describe_status(status)}; it needs no reopening."
        return (
            f"{task.ref} is {describe_status(status)} right now; its report will set the "
            "status. Use the buttons once it has reported."
        )
    if move is TaskMove.REOPEN and status is TaskStatus.IN_PROGRESS:
        return f"{task.ref} is still in progress; it needs no reopening."
    target = TARGET_STATUS[move]
    if not can_transition(status, target):
        return str(IllegalTransition(task, target))
    return None


def state_moves(task: Task, *, has_report: bool, acknowledged: bool) -> list[TaskMove]:
    """The moves a task's state allows now, whoever asks: the buttons its card shows."""
    moves = [TaskMove.ACKNOWLEDGE] if has_report and not acknowledged else []
    status = TaskStatus(task.status)
    if status in BUSY:
        return moves
    for move in (TaskMove.MARK_BLOCKED, TaskMove.MARK_DONE, TaskMove.REOPEN):
        if move is TaskMove.REOPEN and status is TaskStatus.IN_PROGRESS:
            continue
        if can_transition(status, TARGET_STATUS[move]):
            moves.append(move)
    return moves


def acknowledged_by(events: Sequence[TaskEvent]) -> str | None:
    acks = [e for e in events if e.kind == "acknowledged"]
    return acks[-1].actor if acks else None
