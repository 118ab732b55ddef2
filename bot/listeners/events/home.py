"""`app_home_opened`: publish the task board and remember the visit for live refreshes."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.deps import Deps
from bot.services.home import open_home


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_app_home_opened(body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        user_id = str(event.get("user") or "")
        if event.get("tab", "home") != "home" or not user_id:
            return  # the Messages tab
        team_id = str(body.get("team_id") or deps.identity.team_id)
        deps.spawn(open_home(deps, user_id=user_id, team_id=team_id), name="pmteam-home")

    app.event("app_home_opened")(handle_app_home_opened)
