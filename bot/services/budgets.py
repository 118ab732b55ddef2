"""Daily spend caps, read from the usage ledger so they hold across replicas: today's spend of
the workspace and of one person, checked before a turn makes any model call."""

from __future__ import annotations

from datetime import datetime

from bot.core.budget import Budget, Spend, day_start
from bot.services.deps import Deps
from storage.queries import spend_since
from storage.types import utcnow


async def todays_spend(deps: Deps, *, user_id: str, now: datetime | None = None) -> Spend:
    settings = deps.settings
    since = day_start(now or utcnow(), settings.timezone)
    async with deps.sessions() as session:
        workspace = await spend_since(session=session, since=since)
        person = await spend_since(session=session, since=since, user_id=user_id)
    return Spend(
        workspace=Budget(limit=settings.daily_budget_usd, spent=workspace),
        person=Budget(limit=settings.user_daily_budget_usd, spent=person),
    )
