"""Who may decide, assign and resume handoffs: pure checks."""

from __future__ import annotations

from collections.abc import Sequence

from storage.models import HandoffItem, HandoffOwner, HandoffStatus, Task


class HandoffRefused(Exception):
    """A handoff action this person may not take now; the message is for them."""


def is_pm(user_id: str, pm_users: Sequence[str]) -> bool:
    """A project manager: one of PMTEAM_PM_USERS, or anyone when none are named."""
    return not pm_users or user_id in pm_users


def decide_refusal(*, handoff: HandoffItem, user_id: str, pm_users: Sequence[str]) -> str | None:
    """Why this person can't mark the handoff done or decline it, or None. A person's handoff
    is theirs (or a named PM's) to decide; a group's or an unassigned one is a PM's."""
    if handoff.status != HandoffStatus.OPEN:
        return f"That handoff was already {handoff.status}."
    if handoff.owner_kind == HandoffOwner.USER:
        if user_id == handoff.owner_id or user_id in pm_users:
            return None
        return (
            f"Only <@{handoff.owner_id}> (who it is waiting on) or a project manager can "
            "mark it done or decline it."
        )
    if is_pm(user_id, pm_users):
        return None
    return "Only a project manager (PMTEAM_PM_USERS) can decide a handoff nobody owns."


def assign_refusal(*, handoff: HandoffItem, user_id: str, pm_users: Sequence[str]) -> str | None:
    if handoff.status != HandoffStatus.OPEN:
        return f"That handoff was already {handoff.status}."
    if not is_pm(user_id, pm_users):
        return "Only a project manager (PMTEAM_PM_USERS) can assign a handoff."
    return None


def resume_refusal(*, task: Task, user_id: str, pm_users: Sequence[str]) -> str | None:
    if user_id == task.requester_id or is_pm(user_id, pm_users):
        return None
    return (
        f"Only <@{task.requester_id}> (who asked for {task.ref}) or a project manager "
        "can resume it."
    )
