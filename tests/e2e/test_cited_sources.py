"""The line under a researched answer lists the sources the answer cites, by the numbers it
cites them with, and otherwise says plainly what research there was."""

from __future__ import annotations

from typing import Any

from sandbox.model import FakeModel, Json, Text, ToolUse, WebSearch
from sandbox.slack import FakeSlack
from tests.e2e.conftest import (
    ENGINEERING,
    StartPmteam,
    bot_messages,
    mention,
    report_json,
    wait_until_idle,
)
from tests.e2e.pm_support import shown

RESULTS = [
    ("https://example.com/outbox", "The transactional outbox pattern", "Write the event ..."),
    ("https://example.com/keys", "Idempotency keys in payment APIs", "Store the key ..."),
    ("https://example.com/retries", "Retries with exponential backoff", "Back off ..."),
]
ASK = ToolUse(
    "consult_researcher",
    {"objective": "How payment APIs stay idempotent under retries"},
    text_before="Let me check how others do it.",
)


def sources_line(fake_slack: FakeSlack, thread: str) -> str:
    """The answer's context line about research (what sits under the answer)."""
    for message in bot_messages(fake_slack, ENGINEERING, thread):
        for block in message.blocks or []:
            text = shown(block)
            if block.get("type") == "context" and ":mag:" in text:
                return text
    return ""


async def run(
    start_pmteam: StartPmteam,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    *script: Any,
    **env: str,
) -> str:
    pmteam = await start_pmteam(**env)
    fake_model.script(*script, Json(report_json()))
    posted = await mention(fake_slack, "design an idempotent payments API with retries")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    return sources_line(fake_slack, posted.ts)


async def test_only_the_sources_the_answer_cites_are_listed_with_their_numbers(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    line = await run(
        start_pmteam,
        fake_slack,
        fake_model,
        ASK,
        WebSearch("idempotent payments", results=RESULTS, answer_text="Use keys [1][2][3]."),
        Text("Store an idempotency key per request [2], and back off between retries [3]."),
    )
    assert "*Sources:*" in line
    assert "[2] <https://example.com/keys|" in line
    assert "[3] <https://example.com/retries|" in line
    assert "example.com/outbox" not in line  # found by the researcher, never cited


async def test_an_answer_citing_none_of_the_research_says_so(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    line = await run(
        start_pmteam,
        fake_slack,
        fake_model,
        ASK,
        WebSearch("idempotent payments", results=RESULTS, answer_text="Use keys."),
        Text("Store an idempotency key per request."),
    )
    assert "Research consulted 3 source(s); the answer cites none" in line
    assert "https://" not in line


async def test_no_live_sources_with_web_search_on_is_not_called_web_search_off(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    line = await run(
        start_pmteam,
        fake_slack,
        fake_model,
        ASK,
        Text("From what I know, idempotency keys are the usual answer."),  # no search made
        Text("Store an idempotency key per request."),
    )
    assert "no live sources came back" in line
    assert "web search is off" not in line


async def test_web_search_off_is_said_when_it_is_off(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    line = await run(
        start_pmteam,
        fake_slack,
        fake_model,
        ASK,
        Text("From what I know, idempotency keys are the usual answer."),
        Text("Store an idempotency key per request."),
        PMTEAM_RESEARCH_WEB="false",
    )
    assert "Research: no live sources (web search is off)" in line
