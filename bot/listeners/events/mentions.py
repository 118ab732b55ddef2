"""`app_mention`: a task or follow-up asked in a channel thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.intake import Intake
from bot.slack.events import parse_mention


def register(app: AsyncApp, intake: Intake) -> None:
    async def handle_app_mention(body: dict[str, Any]) -> None:
        message = parse_mention(body, intake.deps.identity.bot_user_id)
        if message is not None:
            await intake.take(message)

    app.event("app_mention")(handle_app_mention)
