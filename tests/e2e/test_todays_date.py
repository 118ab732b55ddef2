"""The engineer and the researcher are told the team's date (in `PMTEAM_TIMEZONE`) in their
requests, and the system prompts, which are cached, never carry it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from agents.templates import spoken_date
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from tests.e2e.conftest import StartPmteam, mention, wait_until_idle

# UTC+14: most of the day, its date is not UTC's, so the test sees which one was used.
ZONE = "Pacific/Kiritimati"


def _texts(content: object) -> str:
    if isinstance(content, str):
        return content
    assert isinstance(content, list)
    return "\n".join(str(block.get("text", "")) for block in content if isinstance(block, dict))


async def test_both_agents_are_told_the_teams_date_outside_the_cached_prompt(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_TIMEZONE=ZONE)
    await mention(fake_slack, "design an idempotent payments API with retries")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    today = f"Today is {spoken_date(datetime.now(ZoneInfo(ZONE)).date())}"

    calls = [r.body for r in fake_model.requests if r.path == "/v1/messages"]
    engineer = [b for b in calls if "consult_researcher" in str(b.get("tools", ""))]
    researcher = [b for b in calls if "Research request from the backend engineer" in str(b)]
    assert engineer and researcher  # the offline model consults the researcher
    first_request = _texts(engineer[0]["messages"][-1]["content"])
    assert first_request.startswith(today)
    assert today in _texts(researcher[0]["messages"][0]["content"])
    for body in calls:
        assert "Today is" not in _texts(body.get("system", ""))
