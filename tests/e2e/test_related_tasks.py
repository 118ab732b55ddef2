"""The engineer's `find_related_tasks` sees the team's past tasks as the bot stored them: each
with its status and its last report, and never the task it is working on."""

from __future__ import annotations

from bot.app import Pmteam
from sandbox.model import FakeModel, Json, Text, ToolUse
from sandbox.slack import FakeSlack
from tests.agents.support import messages_requests, tool_results
from tests.e2e.conftest import ON_EACH_DATABASE, mention, report_json, wait_until_idle

pytestmark = ON_EACH_DATABASE


async def test_the_engineer_finds_a_past_task_with_its_status_and_last_report(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    delivered = [{"kind": "system", "description": "Idempotency keys on POST /payments"}]
    fake_model.script(Text("Use idempotency keys."), Json(report_json(key_deliverables=delivered)))
    await mention(fake_slack, "design an idempotent payments API")
    await wait_until_idle(pmteam, fake_slack, turns=1)

    fake_model.script(
        ToolUse("find_related_tasks", {"query": "payments API retries"}),
        Text("Building on T-1."),
        Json(report_json(task="Add retries to the payments API")),
    )
    await mention(fake_slack, "add retries to the payments API")
    await wait_until_idle(pmteam, fake_slack, turns=2)

    [result] = [
        block["content"]
        for request in messages_requests(fake_model)
        for block in tool_results(request)
    ]
    # T-2, the task asking, matches every word best but is not its own related task.
    assert result == (
        "T-1 [completed] design an idempotent payments API — last report: COMPLETED: Design an "
        "idempotent payments API; delivers Idempotency keys on POST /payments"
    )
