"""`/pm calibration` shows how the self-scores held up, and the engineer's request carries a
line of it (outside the cached system prompt) once there are enough finished tasks."""

from __future__ import annotations

import json

from bot.app import Pmteam
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.models import TaskEvent, TaskStatus
from tests.e2e.conftest import ON_EACH_DATABASE, mention, wait_until_idle
from tests.e2e.pm_support import ack_of, add_reports, add_tasks, run_pm, shown

pytestmark = ON_EACH_DATABASE


async def seed(pmteam: Pmteam, count: int, *, reopened: int) -> None:
    """`count` completed tasks whose first report scored Probability of Success 8; the first
    `reopened` of them were reopened after delivery."""
    tasks = await add_tasks(pmteam, count, status=TaskStatus.COMPLETED)
    await add_reports(pmteam, tasks)
    async with pmteam.deps.sessions.begin() as session:
        for task in tasks[:reopened]:
            assert task.id is not None
            session.add(
                TaskEvent(
                    task_id=task.id,
                    from_status=TaskStatus.COMPLETED,
                    to_status=TaskStatus.QUEUED,
                    actor="U0BOB",
                    note="reopened: the rollback is missing",
                )
            )


async def test_calibration_shows_per_axis_outcomes_and_reaches_the_engineer(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await seed(pmteam, 6, reopened=1)

    text = shown(ack_of(await run_pm(fake_slack, "calibration"))["blocks"])
    assert "6 tasks completed in the last 90 days" in text
    assert "Probability of Success ≥ 7: 17 % reopened, 0 % blocked (n=6)" in text
    assert "≤ 5: too few tasks to tell (n=0)" in text
    assert "too few tasks with an estimate to tell (n=0)" in text

    await mention(fake_slack, "add a column for the invoice currency")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    first = next(
        r.body
        for r in fake_model.requests
        if r.path == "/v1/messages" and r.body.get("model") == pmteam.settings.engineer_model
    )
    request = json.dumps(first["messages"][-1], ensure_ascii=False)
    assert (
        "Calibration from this team's finished tasks: tasks you scored Probability of Success "
        "≥ 7 were reopened 17 % of the time (n=6)"
    ) in request
    assert "Calibration" not in json.dumps(first["system"])


async def test_with_too_few_tasks_it_says_so_and_the_engineer_gets_no_line(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await seed(pmteam, 3, reopened=0)
    text = shown(ack_of(await run_pm(fake_slack, "calibration"))["blocks"])
    assert "Too few finished tasks to calibrate the self-scores yet (n=3" in text

    await mention(fake_slack, "add a column for the invoice currency")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    bodies = [r.body for r in fake_model.requests if r.path == "/v1/messages"]
    assert not any("Calibration from this team" in json.dumps(b) for b in bodies)
