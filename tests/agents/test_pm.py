"""The standup narrative: written from the data it is given; a failure gives None, not an error."""

from __future__ import annotations

import json

from agents.config import AgentSettings
from agents.llm import ModelClient
from agents.pm import StandupData, StandupTask, write_standup_narrative
from sandbox.model import ApiError, CutStream, Delay, FakeModel, Text
from tests.agents.support import messages_requests

DATA = StandupData(
    period="since Mon 25 Nov 09:30 UTC",
    completed=[StandupTask("T-3", "Orders pagination", "completed")],
    in_progress=[StandupTask("T-4", "Billing events", "in_progress", "ETA 2 days")],
    blocked=[StandupTask("T-5", "Search index", "blocked", "waiting for cluster access")],
    counts={"completed": 1, "in_progress": 1, "blocked": 1},
)


async def test_the_narrative_is_written_from_the_standup_data(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Text("T-3 shipped.\n T-5 is blocked on cluster access."))
    narrative = await write_standup_narrative(model=model, settings=AgentSettings(), data=DATA)

    assert narrative == "T-3 shipped. T-5 is blocked on cluster access."
    body = messages_requests(fake_model)[0].body
    assert body["model"] == AgentSettings().researcher_model
    sent = json.loads(body["messages"][0]["content"][0]["text"])
    assert sent["blocked"][0] == {
        "ref": "T-5",
        "title": "Search index",
        "status": "blocked",
        "detail": "waiting for cluster access",
    }
    assert "@channel" in body["system"][0]["text"]  # named, to forbid it
    assert "cache_control" not in body  # a daily call: nothing to gain from caching


async def test_an_overloaded_model_gives_no_narrative_and_no_error(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(*[ApiError(529, retry_after_ms=5)] * 3)
    assert await write_standup_narrative(model=model, settings=AgentSettings(), data=DATA) is None


async def test_a_cut_stream_or_a_refusal_gives_no_narrative(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(CutStream(Text("T-3 shipped and " * 10), after_events=4))
    assert await write_standup_narrative(model=model, settings=AgentSettings(), data=DATA) is None
    fake_model.script(Text("No.", stop_reason="refusal"))
    assert await write_standup_narrative(model=model, settings=AgentSettings(), data=DATA) is None


async def test_a_slow_model_is_cut_off_by_the_standup_timeout(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Delay(2.0, Text("too late")))
    settings = AgentSettings(pm_timeout_s=0.2)
    assert await write_standup_narrative(model=model, settings=settings, data=DATA) is None


async def test_the_offline_model_writes_a_narrative(
    fake_model: FakeModel, model: ModelClient
) -> None:
    narrative = await write_standup_narrative(model=model, settings=AgentSettings(), data=DATA)
    assert narrative and "\n" not in narrative
