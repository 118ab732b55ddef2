"""Block Kit for the blocked-reason modal, and the click origin it carries to its submission."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.mrkdwn import escape_mrkdwn, one_line
from bot.slack.blocks.common import section
from storage.models import Task

BLOCKED_MODAL = "task_blocked_reason"
REOPEN_MODAL = "task_reopen_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
REASON_LIMIT = 500


@dataclass(frozen=True)
class ClickOrigin:
    """Where a button was clicked, so the modal's submission can answer in the same place."""

    channel_id: str | None = None
    message_ts: str | None = None
    is_ephemeral: bool = False
    response_url: str | None = None


@dataclass(frozen=True)
class ReasonModal:
    callback_id: str
    title: str
    label: str
    placeholder: str


BLOCKED = ReasonModal(
    BLOCKED_MODAL,
    "Mark blocked",
    "What is it blocked on?",
    "e.g. waiting for production database credentials",
)
REOPEN = ReasonModal(
    REOPEN_MODAL,
    "Reopen",
    "What is missing?",
    "e.g. the migration plan doesn't cover rolling back",
)


def build_blocked_modal(task: Task, origin: ClickOrigin) -> dict[str, Any]:
    return build_reason_modal(task, origin, BLOCKED)


def build_reopen_modal(task: Task, origin: ClickOrigin) -> dict[str, Any]:
    return build_reason_modal(task, origin, REOPEN)


def build_reason_modal(task: Task, origin: ClickOrigin, kind: ReasonModal) -> dict[str, Any]:
    """A modal asking for the reason a move needs; its submission makes the move."""
    metadata = json.dumps(
        {
            "task_id": task.id,
            "channel": origin.channel_id,
            "ts": origin.message_ts,
            "ephemeral": origin.is_ephemeral,
            "response_url": origin.response_url,
        },
        separators=(",", ":"),
    )
    return {
        "type": "modal",
        "callback_id": kind.callback_id,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": kind.title},
        "submit": {"type": "plain_text", "text": kind.title},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"*{task.ref}* {escape_mrkdwn(one_line(task.title, 200))}"),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": kind.label},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": REASON_LIMIT,
                    "placeholder": {"type": "plain_text", "text": kind.placeholder},
                },
            },
        ],
    }


def decode_modal_origin(metadata: str) -> tuple[int, ClickOrigin] | None:
    try:
        data = json.loads(metadata)
        task_id = int(data["task_id"])
    except (ValueError, TypeError, KeyError):
        return None
    return task_id, ClickOrigin(
        channel_id=data.get("channel") or None,
        message_ts=data.get("ts") or None,
        is_ephemeral=bool(data.get("ephemeral")),
        response_url=data.get("response_url") or None,
    )
