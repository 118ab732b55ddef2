"""Channel conventions: `/pm conventions set` edits a channel's standing context in a modal,
`/pm conventions` shows it, the Home tab lists the channels that have it, and the engineer
gets it with every task asked there (outside the cached system prompt)."""

from __future__ import annotations

import json
from typing import Any

from bot.app import Pmteam
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from sandbox.slack.delivery import Delivery
from tests.e2e.conftest import (
    ALICE,
    ENGINEERING,
    ON_EACH_DATABASE,
    mention,
    wait_until_idle,
)
from tests.e2e.pm_support import (
    ack_of,
    home_blocks,
    last_ephemeral,
    run_pm,
    settle,
    shown,
    submit_view,
)

pytestmark = ON_EACH_DATABASE

CONVENTIONS = "Python 3.12 and FastAPI; PostgreSQL 16 on RDS; no new datastores without an ADR."


async def submit_conventions(fake_slack: FakeSlack, user: str, text: str) -> Delivery:
    """The person types into the open conventions modal and saves it."""
    values = {"conventions": {"conventions_input": {"type": "plain_text_input", "value": text}}}
    return await submit_view(fake_slack, user, values)


def engineer_requests(fake_model: FakeModel, model: str) -> list[dict[str, Any]]:
    return [
        r.body
        for r in fake_model.requests
        if r.path == "/v1/messages" and r.body.get("model") == model
    ]


async def test_conventions_set_in_a_modal_reach_the_engineer_outside_the_cached_prompt(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    before = ack_of(await run_pm(fake_slack, "conventions"))
    assert "has no conventions yet" in shown(before["blocks"])

    opened = await run_pm(fake_slack, "conventions set")
    assert opened.acked and opened.status_codes == [200]
    [modal] = fake_slack.workspace.modals(ALICE)
    assert modal["callback_id"] == "pm_conventions"
    assert modal["private_metadata"] == ENGINEERING
    saved = await submit_conventions(fake_slack, ALICE, CONVENTIONS)
    assert saved.status_codes == [200]
    await settle(pmteam, fake_slack)
    assert "updated the conventions" in last_ephemeral(fake_slack, ALICE).text

    shown_now = ack_of(await run_pm(fake_slack, "conventions"))
    assert CONVENTIONS in shown(shown_now["blocks"])
    assert f"<@{ALICE}>" in shown(shown_now["blocks"])

    # Editing again starts from what is there.
    await run_pm(fake_slack, "conventions set")
    modal = fake_slack.workspace.modals(ALICE)[-1]
    assert modal["blocks"][1]["element"]["initial_value"] == CONVENTIONS

    await mention(fake_slack, "add a column for the invoice currency")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    [first, *_] = engineer_requests(fake_model, pmteam.settings.engineer_model)
    request = json.dumps(first["messages"][-1], ensure_ascii=False)
    assert "<channel_conventions" in request and "no new datastores without an ADR" in request
    assert "no new datastores without an ADR" not in json.dumps(first["system"])

    # The Home tab lists the channel.
    await fake_slack.open_app_home(ALICE)
    await settle(pmteam, fake_slack)
    assert f"<#{ENGINEERING}>" in shown(home_blocks(fake_slack, ALICE))
    assert "Channel conventions" in shown(home_blocks(fake_slack, ALICE))


async def test_saving_them_empty_removes_them_and_tasks_go_without(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await run_pm(fake_slack, "conventions set")
    await submit_conventions(fake_slack, ALICE, CONVENTIONS)
    await run_pm(fake_slack, "conventions set")
    await submit_conventions(fake_slack, ALICE, "   ")
    await settle(pmteam, fake_slack)
    assert "removed the conventions" in last_ephemeral(fake_slack, ALICE).text
    assert "has no conventions yet" in shown(ack_of(await run_pm(fake_slack, "conventions")))

    await mention(fake_slack, "add a column for the invoice currency")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    [first, *_] = engineer_requests(fake_model, pmteam.settings.engineer_model)
    assert "channel_conventions" not in json.dumps(first["messages"])


async def test_conventions_in_a_direct_message_say_where_to_run_them(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    dm = fake_slack.workspace.dm_with(ALICE).id
    answer = ack_of(await run_pm(fake_slack, "conventions set", channel=dm))
    assert "Conventions belong to a channel" in shown(answer["blocks"])
    assert fake_slack.workspace.modals(ALICE) == []
