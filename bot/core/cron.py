"""Crontab lines read the way people write them, and the fire times the scheduler can't give."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 = Sunday
_DAY_ITEM = re.compile(r"^(?P<start>\*|\w+)(?:-(?P<end>\w+))?(?:/(?P<step>\d+))?$")


def standup_job_id(channel_id: str) -> str:
    return f"standup:{channel_id}"


def _cron_day(token: str) -> int:
    token = token.lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7  # both 0 and 7 are Sunday
    if token[:3] in _CRON_DAYS and len(token) == 3:
        return _CRON_DAYS.index(token)
    raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")


def _day_of_week(field_text: str) -> str:
    """The crontab weekday field in APScheduler's terms.

    APScheduler numbers days from Monday = 0, crontab from Sunday = 0 (and 7), so `1-5` means
    Tuesday to Saturday to APScheduler but Monday to Friday to everyone who writes a crontab.
    Every item is expanded to day names, which mean the same thing to both.
    """
    if field_text in ("*", "?"):
        return "*"
    days: list[int] = []
    for item in field_text.split(","):
        match = _DAY_ITEM.match(item.strip())
        if match is None:
            raise ValueError(f"{item!r} is not a weekday item")
        start, end, step = match["start"], match["end"], int(match["step"] or 1)
        if step < 1:
            raise ValueError("a weekday step must be at least 1")
        if start == "*":
            if end is not None:
                raise ValueError(f"{item!r} is not a weekday item")
            first, last = 0, 6
        else:
            first = _cron_day(start)
            last = _cron_day(end) if end is not None else (6 if match["step"] else first)
            if end is not None and last == 0 and first > 0:
                last = 7  # `5-7` (or fri-sun) is Friday to Sunday
            if last < first:
                raise ValueError(f"{item!r} runs backwards; write it as two ranges")
        days.extend(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(set(days)))


def crontab_trigger(expr: str, *, timezone: tzinfo) -> CronTrigger:
    """A CronTrigger for a standard 5-field crontab line, with crontab's weekday numbering."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields, this one has {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_day_of_week(weekday),
        timezone=timezone,
    )


def last_fire_time(trigger: CronTrigger, *, now: datetime, lookback: timedelta) -> datetime | None:
    """The latest time at or before `now` that `trigger` fires, looking back at most `lookback`.

    APScheduler only computes forwards, so this widens a window backwards until it holds a
    fire time, then walks forwards through the window to the last one.
    """
    window = min(timedelta(hours=1), lookback)
    while True:
        start = now - window
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        if fire is not None and fire <= now:
            while True:
                following = trigger.get_next_fire_time(fire, fire)
                if following is None or following > now:
                    return fire
                fire = following
        if window >= lookback:
            return None
        window = min(window * 4, lookback)


def period_key(scheduled_for: datetime, timezone: ZoneInfo) -> str:
    """The local wall-clock time of the slot, e.g. `2026-03-30T09:30`.

    Local, without the UTC offset: when clocks go back and a 02:30 slot happens twice that
    night, both fire times share one key, so the channel still gets one standup.
    """
    return scheduled_for.astimezone(timezone).strftime("%Y-%m-%dT%H:%M")


def adhoc_period_key(now: datetime, timezone: ZoneInfo) -> str:
    """A standup posted on request gets its own period, to the minute: a double click (or a
    retried request) within that minute still posts once."""
    return "adhoc:" + period_key(now, timezone)
