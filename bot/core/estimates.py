"""Reading an estimate such as '2-3 days' as a duration, for the overdue nudge."""

from __future__ import annotations

import re
from datetime import timedelta

_ESTIMATE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:-\s*\d+(?:\.\d+)?\s*)?(min|minute|h|hr|hour|d|day|w|week|sprint)s?\b",
    re.IGNORECASE,
)
_UNIT = {
    "min": timedelta(minutes=1),
    "minute": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "hr": timedelta(hours=1),
    "hour": timedelta(hours=1),
    "d": timedelta(days=1),
    "day": timedelta(days=1),
    "w": timedelta(weeks=1),
    "week": timedelta(weeks=1),
    "sprint": timedelta(weeks=2),
}


def parse_estimate(text: str | None) -> timedelta | None:
    """'2-3 days' → 3 days (the upper end: a nudge should not come early); None if unreadable."""
    if not text:
        return None
    match = _ESTIMATE.search(text)
    if match is None:
        return None
    numbers = re.findall(r"\d+(?:\.\d+)?", match.group(0))
    return _UNIT[match.group(2).lower()] * float(numbers[-1])
