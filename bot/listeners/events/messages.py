"""`message` events: DMs and assistant-thread messages become tasks; everything else is ignored."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.listeners.events.intake_flow import take_message
from bot.services.deps import Deps
from bot.services.intake import parse_direct_message


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_message(body: dict[str, Any]) -> None:
        # Edits, deletions, joins, bot posts (ours included) and channel chatter parse to None:
        # acknowledged, never acted on.
        message = parse_direct_message(body, deps.identity.bot_user_id)
        if message is not None:
            await take_message(deps, message)

    app.event("message")(handle_message)
