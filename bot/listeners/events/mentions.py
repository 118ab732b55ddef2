"""`app_mention`: a task or follow-up asked in a channel thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.listeners.events.intake_flow import take_message
from bot.services.deps import Deps
from bot.services.intake import parse_mention


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_app_mention(body: dict[str, Any]) -> None:
        message = parse_mention(body, deps.identity.bot_user_id)
        if message is not None:
            await take_message(deps, message)

    app.event("app_mention")(handle_app_mention)
