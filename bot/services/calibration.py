"""The team's self-score calibration, from the last 90 days of finished tasks."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.calibration import CALIBRATION_DAYS, Calibration, calibrate
from bot.services.deps import Deps
from storage.calibration import finished_task_outcomes
from storage.types import utcnow

WINDOW = timedelta(days=CALIBRATION_DAYS)


async def team_calibration(deps: Deps, *, now: datetime | None = None) -> Calibration:
    async with deps.sessions() as session:
        outcomes = await finished_task_outcomes(session=session, since=(now or utcnow()) - WINDOW)
    return calibrate(outcomes)
