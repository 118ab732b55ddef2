"""`message` events: DMs, assistant-thread messages and replies in a task's thread become turns."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.intake import Intake
from bot.slack.events import parse_direct_message, parse_thread_reply


def register(app: AsyncApp, intake: Intake) -> None:
    bot_user_id = intake.deps.identity.bot_user_id

    async def handle_message(body: dict[str, Any]) -> None:
        # Edits, deletions, joins, bot posts (ours included) and top-level channel chatter
        # parse to None: acknowledged, never acted on.
        message = parse_direct_message(body, bot_user_id) or parse_thread_reply(body, bot_user_id)
        if message is not None:
            await intake.take(message)

    app.event("message")(handle_message)
