"""`message` events: DMs and assistant-thread messages become tasks; everything else is ignored."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.intake import Intake
from bot.slack.events import parse_direct_message


def register(app: AsyncApp, intake: Intake) -> None:
    async def handle_message(body: dict[str, Any]) -> None:
        # Edits, deletions, joins, bot posts (ours included) and channel chatter parse to None:
        # acknowledged, never acted on.
        message = parse_direct_message(body, intake.deps.identity.bot_user_id)
        if message is not None:
            await intake.take(message)

    app.event("message")(handle_message)
