"""Every other event is acknowledged with 200: Slack counts failed deliveries against the app."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_other_event(body: dict[str, Any]) -> None:
        event_type = str((body.get("event") or {}).get("type", "unknown"))
        deps.metrics.inc("pmteam_events_ignored_total", type=event_type)

    app.event(re.compile(".*"))(handle_other_event)
