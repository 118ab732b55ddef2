"""Block Kit for channel conventions: what `/pm conventions` shows, and the modal that edits
them (pure)."""

from __future__ import annotations

from typing import Any

from bot.core.mrkdwn import escape_mrkdwn
from bot.slack.blocks.common import Block, context, section
from storage.conventions import MAX_CONVENTIONS_CHARS
from storage.models import ChannelConvention

CONVENTIONS_MODAL = "pm_conventions"
CONVENTIONS_BLOCK = "conventions"
CONVENTIONS_INPUT = "conventions_input"


def build_conventions_blocks(channel_id: str, found: ChannelConvention | None) -> list[Block]:
    if found is None:
        return [
            section(
                f"<#{channel_id}> has no conventions yet. `/pm conventions set` writes them: "
                "the stack, versions, constraints and decisions the engineer should follow "
                "in every task asked here."
            )
        ]
    return [
        section(f"*Conventions of <#{channel_id}>*\n{escape_mrkdwn(found.text)}"),
        context(
            f"Sent to the engineer with every task asked here · last edited by "
            f"<@{found.updated_by}> · `/pm conventions set` to change them"
        ),
    ]


def build_conventions_modal(channel_id: str, current: str) -> dict[str, Any]:
    """A modal editing a channel's conventions; `private_metadata` names the channel."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": CONVENTIONS_INPUT,
        "multiline": True,
        "max_length": MAX_CONVENTIONS_CHARS,
        "placeholder": {
            "type": "plain_text",
            "text": "e.g. Python 3.12, FastAPI, PostgreSQL 16 on RDS; no new datastores "
            "without an ADR; ADRs: https://wiki.example.com/adr",
        },
    }
    if current:
        element["initial_value"] = current
    return {
        "type": "modal",
        "callback_id": CONVENTIONS_MODAL,
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": "Channel conventions"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"What the engineer should know about every task asked in <#{channel_id}>. "
                "It goes with each request; leave it empty to remove the conventions."
            ),
            {
                "type": "input",
                "block_id": CONVENTIONS_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Stack, versions, constraints, links"},
                "element": element,
            },
        ],
    }


def submitted_conventions(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(CONVENTIONS_BLOCK) or {}
    return str((values.get(CONVENTIONS_INPUT) or {}).get("value") or "").strip()
