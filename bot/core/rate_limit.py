"""A per-person sliding-window limit on new turns, counting each Slack message once."""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    """At most `limit` new turns per person per `window` seconds (per process)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[tuple[float, str]]] = {}

    def allow(self, key: str, message: str = "", now: float | None = None) -> bool:
        """`message` (the Slack ts) makes Slack's retries and the app_mention + message double
        delivery of one message count once."""
        if self.limit <= 0:
            return True
        now = time.monotonic() if now is None else now
        recent = self._seen.setdefault(key, deque())
        while recent and now - recent[0][0] >= self.window:
            recent.popleft()
        if message and any(seen == message for _, seen in recent):
            return True
        if len(recent) >= self.limit:
            return False
        recent.append((now, message))
        return True
