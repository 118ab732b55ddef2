"""Daily spend caps (pure): how much of a day's model budget is used, when the day ends in the
team's time zone, and what pmteam says at 80 % and at the cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

WARN_AT = 0.8  # the share of a cap at which the PMs are told, once a day


@dataclass(frozen=True)
class Budget:
    """One cap (USD per day; None = no cap) and what today's model calls have cost so far."""

    limit: float | None
    spent: float

    @property
    def share(self) -> float:
        return self.spent / self.limit if self.limit else 0.0

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.spent >= self.limit

    @property
    def near(self) -> bool:
        return self.limit is not None and self.share >= WARN_AT

    def phrase(self) -> str:
        """E.g. "$4.10 of $5.00 (82 %)"."""
        if self.limit is None:
            return f"${self.spent:,.2f} (no cap)"
        return f"${self.spent:,.2f} of ${self.limit:,.2f} ({self.share:.0%})"


@dataclass(frozen=True)
class Spend:
    """Today's spend against both caps: the workspace's, and one person's."""

    workspace: Budget
    person: Budget

    @property
    def capped(self) -> bool:
        return self.workspace.limit is not None or self.person.limit is not None

    def summary(self) -> str:
        """E.g. "Today: $4.10 of $5.00 (82%) for everyone · yours $0.40 of $1.00 (40%)"."""
        parts = []
        if self.workspace.limit is not None:
            parts.append(f"{self.workspace.phrase()} for everyone")
        if self.person.limit is not None:
            parts.append(f"yours {self.person.phrase()}")
        line = "Today's model spend: " + " · ".join(parts)
        if self.workspace.reached or self.person.reached:
            line += " · at the cap, new work waits until the budget starts over at midnight"
        return line


def day_start(now: datetime, timezone: str) -> datetime:
    """Midnight today in the team's time zone, as an aware UTC time."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(ZoneInfo("UTC"))


def next_reset(now: datetime, timezone: str) -> datetime:
    """The next midnight in the team's time zone (a day's budget starts over then)."""
    local = now.astimezone(ZoneInfo(timezone))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(ZoneInfo("UTC"))


def until(moment: datetime, now: datetime) -> str:
    """ "3 h 20 min", "45 min": how long until `moment`."""
    minutes = max(1, int((moment - now).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _who_raises(setting: str, pm_users: list[str]) -> str:
    asked = " or ".join(f"<@{user}>" for user in pm_users[:3])
    who = f"{asked} (or whoever runs pmteam)" if asked else "whoever runs pmteam"
    return f"ask {who} to raise `{setting}`"


def cap_reached_text(
    *,
    workspace: Budget,
    person: Budget,
    now: datetime,
    timezone: str,
    pm_users: list[str],
) -> str | None:
    """What the thread is told when a cap stops a turn before any model call; None when
    neither cap is reached."""
    if workspace.reached:
        whose, budget, setting = "This workspace has", workspace, "PMTEAM_DAILY_BUDGET_USD"
    elif person.reached:
        whose, budget, setting = "You have", person, "PMTEAM_USER_DAILY_BUDGET_USD"
    else:
        return None
    reset = next_reset(now, timezone)
    local = reset.astimezone(ZoneInfo(timezone))
    return (
        f":hourglass_flowing_sand: {whose} used today's model budget "
        f"({budget.phrase()}), so I haven't started on this. The budget starts over at "
        f"{local:%H:%M} {timezone} (in {until(reset, now)}): mention me in this thread again "
        f"then, or {_who_raises(setting, pm_users)}."
    )


def near_cap_text(*, budget: Budget, user_id: str | None, timezone: str) -> str:
    """The PMs' line when spend passes 80 % of a cap (the workspace's, or one person's)."""
    spent, limit, share = f"${budget.spent:,.2f}", f"${budget.limit or 0:,.2f}", budget.share
    if user_id is None:
        return (
            f":warning: Model spend today is {spent} of the {limit} daily budget ({share:.0%}). "
            f"At the cap I stop starting new work until midnight {timezone}; raise "
            "`PMTEAM_DAILY_BUDGET_USD` to allow more."
        )
    return (
        f":warning: <@{user_id}> has spent {spent} of their {limit} daily model budget "
        f"({share:.0%}). At the cap I stop starting their new work until midnight {timezone}; "
        "raise `PMTEAM_USER_DAILY_BUDGET_USD` to allow more."
    )
