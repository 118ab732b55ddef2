"""Who may give pmteam work and who may read task status: pure checks on the allowlists."""

from __future__ import annotations

from collections.abc import Sequence

TASK_REFUSED_USER = (
    "Sorry, I only take tasks from the people my operators have allowed. "
    "Ask whoever runs pmteam to add you to PMTEAM_ALLOWED_USERS."
)
TASK_REFUSED_CHANNEL = (
    "Sorry, I don't take tasks in this channel. Ask whoever runs pmteam to add it to "
    "PMTEAM_ALLOWED_CHANNELS, or message me directly."
)


def task_refusal(
    *,
    user_id: str,
    channel_id: str,
    source: str,
    allowed_channels: Sequence[str],
    allowed_users: Sequence[str],
) -> str | None:
    """Why pmteam won't take a task from this person here, in a sentence; None when it will.

    The channel list applies to channels only: a DM or the assistant pane is always allowed."""
    if allowed_users and user_id not in allowed_users:
        return TASK_REFUSED_USER
    in_a_channel = source in ("mention", "thread", "shortcut")
    if allowed_channels and in_a_channel and channel_id not in allowed_channels:
        return TASK_REFUSED_CHANNEL
    return None


def read_refusal(
    *,
    user_id: str,
    channel_id: str | None,
    allowed_channels: Sequence[str],
    allowed_users: Sequence[str],
    coordination_channel: str | None = None,
) -> str | None:
    """Why this person may not read task status here, or None. The coordination channel is
    always allowed: it is where the PM works, whatever PMTEAM_ALLOWED_CHANNELS lists."""
    if allowed_users and user_id not in allowed_users:
        return (
            "Sorry, pmteam answers only the people its operators have allowed "
            "(PMTEAM_ALLOWED_USERS)."
        )
    # No channel: the person's own App Home or a modal; a DM: their conversation with pmteam.
    elsewhere = (
        channel_id is not None
        and not channel_id.startswith("D")
        and channel_id != coordination_channel
    )
    if allowed_channels and elsewhere and channel_id not in allowed_channels:
        where = ", ".join(f"<#{c}>" for c in allowed_channels)
        return f"Sorry, I answer `/pm` only in {where} and in a DM with me."
    return None


def private_refusal(*, user_id: str, requester_id: str, visibility: str, ref: str) -> str | None:
    """Why this person may not see a task asked in private (a DM, the assistant pane, a private
    channel) that its requester hasn't shared; None when they may."""
    if visibility == "private" and user_id != requester_id:
        return (
            f"{ref} was asked privately; only the person who asked can see it until they share it."
        )
    return None


def posting_refusal(*, user_id: str, pm_users: Sequence[str], what: str) -> str | None:
    """Why this person may not make pmteam post to the coordination channel (`/pm report`,
    `/pm standup post`); None when they may. Everyone may when no PMs are set."""
    if pm_users and user_id not in pm_users:
        return f"Only a project manager (PMTEAM_PM_USERS) can {what}."
    return None
