"""Which channels a person is in, from Slack, remembered for a minute: who may read a task
asked in a channel depends on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = structlog.get_logger("pmteam.slack")

MEMBERSHIP_TTL = 60.0  # seconds: someone who just joined a channel waits at most this long
MAX_PAGES = 10  # 2,000 channels: past that, a person sees the tasks of the first 2,000


@dataclass
class Memberships:
    client: AsyncWebClient
    ttl: float = MEMBERSHIP_TTL
    clock: Callable[[], float] = time.monotonic
    _known: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)

    async def channels_of(self, user_id: str) -> frozenset[str]:
        """The public and private channels `user_id` is in; empty when Slack can't say (a
        person then reads only their own tasks, and a PM what a PM may)."""
        now = self.clock()
        known = self._known.get(user_id)
        if known is not None and now - known[0] < self.ttl:
            return known[1]
        channels: set[str] = set()
        cursor: str | None = None
        try:
            for _ in range(MAX_PAGES):
                response = await self.client.users_conversations(
                    user=user_id,
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=200,
                    **({"cursor": cursor} if cursor else {}),
                )
                channels.update(str(c["id"]) for c in response.get("channels") or [])
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SlackApiError as exc:
            log.warning("could not read a person's channels", error=exc.response.get("error"))
            return frozenset()
        found = frozenset(channels)
        self._known[user_id] = (now, found)
        return found
