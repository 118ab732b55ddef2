"""Model output never pings a whole channel or a user group, wherever pmteam posts it."""

from __future__ import annotations

import json

import pytest

from bot.app import Pmteam
from bot.slack.blocks.report import ACTION_DETAILS
from sandbox.model import FakeModel, Json, Text
from sandbox.slack import FakeSlack
from sandbox.slack.workspace import Message
from storage.models import TurnStatus
from tests.e2e.conftest import (
    ALICE,
    COORDINATION,
    ENGINEERING,
    RAW_SPECIAL_MENTIONS,
    bot_messages,
    mention,
    report_json,
    wait_until_idle,
)

PINGS = "<!channel> <!here> @everyone <!subteam^S1|@devs> @channel <!here|here> @here"


def everything_shown(message: Message) -> str:
    return message.text + json.dumps(message.blocks or [], ensure_ascii=False)


@pytest.mark.reliability(
    "Model output that pings @channel, @here, @everyone or a user group", kind="attack"
)
async def test_special_mentions_in_model_output_are_neutralised_everywhere(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(
        Text(f"Heads up {PINGS}: the migration needs a maintenance window.\n\nPlan: {PINGS}"),
        Json(
            report_json(
                task=f"Plan the migration {PINGS}",
                confidence_notes=f"Tell {PINGS} before starting.",
                key_deliverables=[{"kind": "system", "description": f"Runbook for {PINGS}"}],
                dependencies_handoffs=[
                    {"kind": "needed_from_others", "description": f"Sign-off from {PINGS}"}
                ],
            )
        ),
    )
    posted = await mention(fake_slack, "plan the database migration")
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.DONE
    assert fake_model.pending == 0  # both scripted replies were used

    answer, summary = bot_messages(fake_slack, ENGINEERING, posted.ts)
    [report] = bot_messages(fake_slack, COORDINATION)
    for message in (answer, summary, report):
        shown = everything_shown(message)
        for raw in RAW_SPECIAL_MENTIONS:
            assert raw not in shown, f"{raw!r} survived in {message.ts}: {shown[:300]}"

    # Still readable: the words are there, they just don't ping.
    assert "the migration needs a maintenance window" in answer.text
    assert "@\u2060channel" in answer.text and "@\u2060devs" in answer.text
    # The confidence notes are in the summary's Details modal, as safe as the rest.
    await fake_slack.click_button(ALICE, ENGINEERING, summary.ts, ACTION_DETAILS)
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("views.open")))
    [opened] = fake_slack.calls_to("views.open")
    modal = json.dumps(opened.params["view"], ensure_ascii=False)
    assert "Tell" in modal
    for raw in RAW_SPECIAL_MENTIONS:
        assert raw not in modal
    assert "Runbook for" in everything_shown(report)
    assert "Sign-off from" in everything_shown(report)
