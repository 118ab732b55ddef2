"""Block Kit for the blocked-reason modal, and the click origin it carries to its submission."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.mrkdwn import escape_mrkdwn, one_line
from bot.slack.blocks.common import section
from storage.models import Task

BLOCKED_MODAL = "task_blocked_reason"
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


def build_blocked_modal(task: Task, origin: ClickOrigin) -> dict[str, Any]:
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
        "callback_id": BLOCKED_MODAL,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Mark blocked"},
        "submit": {"type": "plain_text", "text": "Mark blocked"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"*{task.ref}* {escape_mrkdwn(one_line(task.title, 200))}"),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "What is it blocked on?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": REASON_LIMIT,
                    "placeholder": {
                        "type": "plain_text",
                        "text": "e.g. waiting for production database credentials",
                    },
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
