"""The PM's card says what research backed the work, counted from the stored research requests
(their live sources), never taken from the model's words."""

from __future__ import annotations

from sandbox.model import FakeModel, Json, Text
from sandbox.slack import FakeSlack
from storage.models import ResearchRequest, Task
from tests.e2e.conftest import (
    StartPmteam,
    mention,
    report_json,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import report_message, settle, shown


def card_text(fake_slack: FakeSlack, task: Task) -> str:
    return shown(report_message(fake_slack, task).blocks)


async def test_a_researched_task_shows_how_many_live_sources_backed_it(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam()
    await mention(fake_slack, "design an idempotent payments API with retries")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    await settle(pmteam, fake_slack)

    [research] = await rows(pmteam, ResearchRequest)  # the offline model consults once
    live = {s["url"] for s in research.sources}
    assert research.live_sources and live
    [task] = await rows(pmteam, Task)
    noun = "source" if len(live) == 1 else "sources"
    assert f"Research: {len(live)} live {noun} (1 request)" in card_text(fake_slack, task)


async def test_research_without_live_sources_says_the_work_was_not_validated(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_RESEARCH_WEB="false")
    await mention(fake_slack, "design an idempotent payments API with retries")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    await settle(pmteam, fake_slack)

    [task] = await rows(pmteam, Task)
    text = card_text(fake_slack, task)
    assert "Research: not validated against live sources (1 request)" in text


async def test_a_task_worked_without_research_says_so_whatever_the_answer_claims(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam()
    fake_model.script(
        Text("I validated this against 12 sources from the web."),
        Json(report_json()),
    )
    await mention(fake_slack, "add an index to orders.created_at")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    await settle(pmteam, fake_slack)

    [task] = await rows(pmteam, Task)
    assert "Research: none for this turn" in card_text(fake_slack, task)
