"""`app_mention`: a task or follow-up asked in a channel thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.intake import parse_mention
from bot.listeners.events.intake_flow import take_message
from bot.runtime import Runtime


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def handle_app_mention(body: dict[str, Any]) -> None:
        message = parse_mention(body, runtime.identity.bot_user_id)
        if message is not None:
            await take_message(runtime, message)

    app.event("app_mention")(handle_app_mention)
