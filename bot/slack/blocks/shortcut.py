"""Block Kit for "Make this a pmteam task": the modal a message shortcut opens (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.mrkdwn import escape_mrkdwn, one_line
from bot.slack.blocks.common import section

TASK_SHORTCUT = "make_pmteam_task"
TASK_SHORTCUT_MODAL = "pmteam_task_from_message"
WHAT_BLOCK = "what"
WHAT_INPUT = "what_input"
WHERE_BLOCK = "where"
WHERE_INPUT = "where_input"
IN_THREAD = "thread"
IN_CHANNEL = "channel"
# What of the message travels in the modal's private_metadata (Slack allows 3,000 characters).
_QUOTED_CHARS = 1_800


@dataclass(frozen=True)
class SourceMessage:
    """The message the shortcut was used on."""

    channel_id: str
    ts: str
    thread_ts: str | None  # the thread it is in, when it is a reply or has replies
    author: str
    text: str

    @classmethod
    def from_payload(cls, body: dict[str, Any]) -> SourceMessage | None:
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or "")
        ts = str(message.get("ts") or body.get("message_ts") or "")
        if not channel or not ts:
            return None
        return cls(
            channel_id=channel,
            ts=ts,
            thread_ts=str(message["thread_ts"]) if message.get("thread_ts") else None,
            author=str(message.get("user") or message.get("bot_id") or ""),
            text=str(message.get("text") or "")[:_QUOTED_CHARS],
        )

    def metadata(self) -> str:
        return json.dumps(
            {
                "c": self.channel_id,
                "ts": self.ts,
                "th": self.thread_ts,
                "a": self.author,
                "t": self.text,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_metadata(cls, metadata: str) -> SourceMessage | None:
        try:
            data = json.loads(metadata)
            return cls(
                channel_id=str(data["c"]),
                ts=str(data["ts"]),
                thread_ts=str(data["th"]) if data.get("th") else None,
                author=str(data.get("a") or ""),
                text=str(data.get("t") or ""),
            )
        except (ValueError, KeyError, TypeError):
            return None


def build_task_shortcut_modal(message: SourceMessage) -> dict[str, Any]:
    quoted = escape_mrkdwn(one_line(message.text, 300)) or "_(no text)_"
    who = f"<@{message.author}>" if message.author.startswith(("U", "W")) else "a bot"
    option = _options()
    return {
        "type": "modal",
        "callback_id": TASK_SHORTCUT_MODAL,
        "private_metadata": message.metadata(),
        "title": {"type": "plain_text", "text": "Make it a task"},
        "submit": {"type": "plain_text", "text": "Create task"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"From {who} in <#{message.channel_id}>:\n>{quoted}"),
            {
                "type": "input",
                "block_id": WHAT_BLOCK,
                "label": {"type": "plain_text", "text": "What should I do with it?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": WHAT_INPUT,
                    "multiline": True,
                    "max_length": 3_000,
                    "placeholder": {
                        "type": "plain_text",
                        "text": "e.g. find why this error happens and propose a fix",
                    },
                },
            },
            {
                "type": "input",
                "block_id": WHERE_BLOCK,
                "label": {"type": "plain_text", "text": "Where should I answer?"},
                "element": {
                    "type": "radio_buttons",
                    "action_id": WHERE_INPUT,
                    "initial_option": option[0],
                    "options": option,
                },
            },
        ],
    }


def _options() -> list[dict[str, Any]]:
    return [
        {
            "text": {"type": "plain_text", "text": "In that message's thread"},
            "value": IN_THREAD,
        },
        {
            "text": {"type": "plain_text", "text": "In a new thread in the channel"},
            "value": IN_CHANNEL,
        },
    ]


def submitted_task(view: dict[str, Any]) -> tuple[str, str]:
    """What the person asked, and where to answer (IN_THREAD or IN_CHANNEL)."""
    values = (view.get("state") or {}).get("values") or {}
    what = str(((values.get(WHAT_BLOCK) or {}).get(WHAT_INPUT) or {}).get("value") or "")
    where_input = (values.get(WHERE_BLOCK) or {}).get(WHERE_INPUT) or {}
    where = str((where_input.get("selected_option") or {}).get("value") or IN_THREAD)
    return what.strip(), where if where in (IN_THREAD, IN_CHANNEL) else IN_THREAD
