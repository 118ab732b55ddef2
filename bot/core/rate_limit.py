"""The per-person limit on new turns: how many, over how long.

It is counted in the database (`storage/rate_limits.py`), one row per Slack message, so it
holds across replicas and a retried message counts once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` new turns per person per `window` seconds, across all replicas."""

    limit: int
    window: float

    @property
    def unlimited(self) -> bool:
        """0 (or less) means no limit: nothing is counted."""
        return self.limit <= 0

    @property
    def span(self) -> timedelta:
        return timedelta(seconds=self.window)
