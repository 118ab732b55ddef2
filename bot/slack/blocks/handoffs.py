"""Block Kit for tracked handoffs: the owner's DM, the card's lines, the modals, the lists."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from agents.reports import KIND_LABELS
from bot.core.mrkdwn import clip, escape_mrkdwn, one_line
from bot.slack.blocks.common import Block, button, context, section
from storage.models import HandoffItem, HandoffOwner, HandoffStatus, Task

ACTION_HANDOFF_DONE = "handoff_done"
ACTION_HANDOFF_DECLINE = "handoff_decline"
ACTION_HANDOFF_ASSIGN = "handoff_assign"
ACTION_HANDOFFS_RESUME = "handoffs_resume"
DECLINE_MODAL = "handoff_decline_reason"
ASSIGN_MODAL = "handoff_assign_owner"
DECLINE_BLOCK = "reason"
DECLINE_INPUT = "reason_input"
ASSIGN_BLOCK = "owner"
ASSIGN_INPUT = "owner_select"
CARD_HANDOFFS_SHOWN = 10  # each tracked handoff is its own block on the card


def owner_text(handoff: HandoffItem) -> str:
    """Who a handoff waits on, without pinging a user group."""
    if handoff.owner_kind == HandoffOwner.USER and handoff.owner_id:
        return f"<@{handoff.owner_id}>"
    if handoff.owner_kind == HandoffOwner.GROUP and handoff.owner_id:
        return f"user group `{handoff.owner_id}` (no DM: assign a person to notify)"
    return "no owner yet"


def state_text(handoff: HandoffItem) -> str:
    by = f" by <@{handoff.decided_by}>" if handoff.decided_by else ""
    if handoff.status == HandoffStatus.DONE:
        return f":white_check_mark: done{by}"
    if handoff.status == HandoffStatus.DECLINED:
        reason = f": {escape_mrkdwn(one_line(handoff.reason, 300))}" if handoff.reason else ""
        return f":heavy_multiplication_x: declined{by}{reason}"
    return ":hourglass_flowing_sand: open"


def handoff_title(handoff: HandoffItem, limit: int = 300) -> str:
    label = KIND_LABELS.get(handoff.kind, handoff.kind)
    return f"{label}: {escape_mrkdwn(one_line(handoff.description, limit))}"


def build_card_handoff_blocks(handoffs: Sequence[HandoffItem]) -> list[Block]:
    """One block per tracked handoff on the card: what, who, its state; Assign while open."""
    blocks: list[Block] = []
    for handoff in handoffs[:CARD_HANDOFFS_SHOWN]:
        what = handoff_title(handoff, 1500)
        block = section(f"• {what}\n{owner_text(handoff)} · {state_text(handoff)}")
        block["block_id"] = f"handoff:{handoff.id}"
        if handoff.status == HandoffStatus.OPEN:
            label = "Assign" if handoff.owner_kind != HandoffOwner.USER else "Reassign"
            block["accessory"] = button(label, ACTION_HANDOFF_ASSIGN, str(handoff.id))
        blocks.append(block)
    if len(handoffs) > CARD_HANDOFFS_SHOWN:
        more = len(handoffs) - CARD_HANDOFFS_SHOWN
        blocks.append(context(f"…and {more} more: `/pm handoffs all`"))
    return blocks


def handoff_dm_text(handoff: HandoffItem, task: Task) -> str:
    return clip(
        f"{task.ref} needs something from you: {escape_mrkdwn(one_line(handoff.description, 300))}",
        3000,
    )


def build_handoff_dm_blocks(handoff: HandoffItem, task: Task, permalink: str | None) -> list[Block]:
    """The owner's DM: the task, what it needs from them, the thread; Done and Decline while
    it is open, its outcome once decided."""
    where = f"<{permalink}|View the thread>" if permalink else "thread link unavailable"
    blocks: list[Block] = [
        section(
            f"*{task.ref}* {escape_mrkdwn(one_line(task.title, 200))} is waiting on you:\n"
            f"> {handoff_title(handoff, 1500)}"
        ),
        context(f"Asked by <@{task.requester_id}> · {where}"),
    ]
    if handoff.status == HandoffStatus.OPEN:
        value = str(handoff.id)
        blocks.append(
            {
                "type": "actions",
                "block_id": f"handoff_actions:{handoff.id}",
                "elements": [
                    button("Done", ACTION_HANDOFF_DONE, value, style="primary"),
                    button("Decline", ACTION_HANDOFF_DECLINE, value),
                ],
            }
        )
    else:
        blocks.append(context(state_text(handoff)))
    return blocks


def build_handoff_line(task: Task, handoff: HandoffItem, actor: str) -> str:
    """What happened to a handoff, as a line in the task's thread and the card's."""
    what = f"‘{escape_mrkdwn(one_line(handoff.description, 200))}’"
    who = f"<@{actor}>"
    if handoff.status == HandoffStatus.DONE:
        return f":white_check_mark: {task.ref}: {who} marked {what} done"
    if handoff.status == HandoffStatus.DECLINED:
        reason = f": {escape_mrkdwn(one_line(handoff.reason, 300))}" if handoff.reason else ""
        return f":heavy_multiplication_x: {task.ref}: {who} declined {what}{reason}"
    return f":bust_in_silhouette: {task.ref}: {who} assigned {what} to {owner_text(handoff)}"


def build_all_done_blocks(task: Task, handoffs: Sequence[HandoffItem]) -> list[Block]:
    """The line saying everything the task waited on is done, with Resume for its requester."""
    done = "; ".join(one_line(h.description, 80) for h in handoffs)
    return [
        section(
            f":tada: {task.ref}: every handoff is done ({escape_mrkdwn(clip(done, 1500))}). "
            f"<@{task.requester_id}>, press Resume to have me carry on."
        ),
        {
            "type": "actions",
            "block_id": f"handoffs_resume:{task.id}",
            "elements": [button("Resume", ACTION_HANDOFFS_RESUME, str(task.id), style="primary")],
        },
    ]


def resume_request(handoffs: Sequence[HandoffItem]) -> str:
    """The follow-up turn's request when the requester resumes a task."""
    done = "; ".join(one_line(h.description, 200) for h in handoffs)
    return f"The handoffs are done: {done}; carry on."


def _modal_metadata(handoff: HandoffItem, origin: dict[str, Any]) -> str:
    return json.dumps({"handoff_id": handoff.id, **origin}, separators=(",", ":"))


def decode_handoff_metadata(metadata: str) -> tuple[int, dict[str, Any]] | None:
    try:
        data = json.loads(metadata)
        handoff_id = int(data.pop("handoff_id"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return handoff_id, data


def build_decline_modal(handoff: HandoffItem, task: Task, origin: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DECLINE_MODAL,
        "private_metadata": _modal_metadata(handoff, origin),
        "title": {"type": "plain_text", "text": "Decline"},
        "submit": {"type": "plain_text", "text": "Decline"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"*{task.ref}* {handoff_title(handoff, 1500)}"),
            {
                "type": "input",
                "block_id": DECLINE_BLOCK,
                "label": {"type": "plain_text", "text": "Why can't you do it?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": DECLINE_INPUT,
                    "multiline": True,
                    "max_length": 500,
                    "placeholder": {
                        "type": "plain_text",
                        "text": "e.g. not my team's; ask platform",
                    },
                },
            },
        ],
    }


def build_assign_modal(handoff: HandoffItem, task: Task) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "users_select",
        "action_id": ASSIGN_INPUT,
        "placeholder": {"type": "plain_text", "text": "Choose a person"},
    }
    if handoff.owner_kind == HandoffOwner.USER and handoff.owner_id:
        element["initial_user"] = handoff.owner_id
    return {
        "type": "modal",
        "callback_id": ASSIGN_MODAL,
        "private_metadata": _modal_metadata(handoff, {}),
        "title": {"type": "plain_text", "text": "Assign handoff"},
        "submit": {"type": "plain_text", "text": "Assign"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"*{task.ref}* {handoff_title(handoff, 1500)}"),
            {
                "type": "input",
                "block_id": ASSIGN_BLOCK,
                "label": {"type": "plain_text", "text": "Who must act on it?"},
                "element": element,
            },
        ],
    }


def age_text(created_at: datetime, now: datetime) -> str:
    days = int((now - created_at) / timedelta(days=1))
    if days >= 1:
        return f"{days}d"
    hours = int((now - created_at) / timedelta(hours=1))
    return f"{hours}h" if hours >= 1 else "new"


def handoff_list_line(
    handoff: HandoffItem, task: Task, *, now: datetime, overdue_after: timedelta, owner: bool
) -> str:
    """One open handoff in a list: task, what, (who,) age, overdue when it is."""
    late = " · :warning: overdue" if now - handoff.created_at > overdue_after else ""
    who = f" · {owner_text(handoff)}" if owner else ""
    return (
        f"• *{task.ref}* {handoff_title(handoff, 200)}{who} · {age_text(handoff.created_at, now)}"
        f"{late}"
    )


def build_handoffs_list_blocks(
    rows: Sequence[tuple[HandoffItem, Task]],
    *,
    title: str,
    now: datetime,
    overdue_after: timedelta,
    show_owner: bool,
) -> list[Block]:
    """`/pm handoffs`: open handoffs, oldest first."""
    if not rows:
        return [section(f"*{title}*\nNothing open. :tada:")]
    lines = [
        handoff_list_line(h, t, now=now, overdue_after=overdue_after, owner=show_owner)
        for h, t in rows
    ]
    blocks: list[Block] = [section(f"*{title}*")]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > 2800:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    return blocks[:45]


def build_nudge_text(handoff: HandoffItem, task: Task, permalink: str | None) -> str:
    where = f" <{permalink}|View the thread>" if permalink else ""
    return (
        f":wave: A reminder: {task.ref} ({escape_mrkdwn(one_line(task.title, 120))}) is still "
        f"waiting on you: {escape_mrkdwn(one_line(handoff.description, 300))}.{where} "
        "Press Done or Decline on my earlier "
        "message, or `/pm handoffs` lists everything waiting on you."
    )
