""" "Make this a pmteam task": the message shortcut opens a modal; its submission makes a task
from the message, answered in that message's thread with the thread as context."""

from __future__ import annotations

import json
from typing import Any

from bot.app import Pmteam
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from sandbox.slack.delivery import Delivery
from storage.models import Task, Turn
from tests.e2e.conftest import (
    ALICE,
    BOB,
    ENGINEERING,
    ON_EACH_DATABASE,
    bot_messages,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import settle, submit_view

pytestmark = ON_EACH_DATABASE

ERROR_REPORT = "Invoices over 10k fail with `numeric field overflow` since this morning"
REPLY = "It started after the 14:00 deploy, only for EUR invoices"
WHAT = "Find why these invoices fail and propose a fix"


async def use_shortcut(fake_slack: FakeSlack, user: str, channel: str, ts: str) -> Delivery:
    """`user` picks "Make this a pmteam task" on the message `ts`."""
    workspace = fake_slack.workspace
    [message] = [m for m in workspace.messages(channel, include_replies=True) if m.ts == ts]
    payload: dict[str, Any] = {
        "type": "message_action",
        "callback_id": "make_pmteam_task",
        "trigger_id": workspace.issue_trigger(user),
        "team": {"id": workspace.team.id, "domain": workspace.team.domain},
        "user": {"id": user, "username": user.lower(), "team_id": workspace.team.id},
        "channel": {"id": channel, "name": "engineering"},
        "message": {
            "type": "message",
            "user": message.user,
            "ts": message.ts,
            "text": message.text,
            **({"thread_ts": message.thread_ts} if message.thread_ts else {}),
        },
        "message_ts": message.ts,
        "response_url": "",
        "token": fake_slack.verification_token,
        "api_app_id": workspace.bot_user.app_id,
        "is_enterprise_install": False,
    }
    return await fake_slack.interact(payload)


async def submit_task(fake_slack: FakeSlack, user: str, what: str, where: str) -> Delivery:
    values = {
        "what": {"what_input": {"type": "plain_text_input", "value": what}},
        "where": {"where_input": {"type": "radio_buttons", "selected_option": {"value": where}}},
    }
    return await submit_view(fake_slack, user, values)


async def test_a_message_and_its_thread_become_a_task_answered_in_that_thread(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # Bob reports a problem (not to pmteam); someone adds a detail in its thread.
    report = await fake_slack.post_as_user(BOB, ENGINEERING, ERROR_REPORT)
    await fake_slack.post_as_user(ALICE, ENGINEERING, REPLY, thread_ts=report.ts)
    await fake_slack.drain()
    assert await rows(pmteam, Task) == []

    opened = await use_shortcut(fake_slack, ALICE, ENGINEERING, report.ts)
    assert opened.status_codes == [200]
    [modal] = fake_slack.workspace.modals(ALICE)
    assert modal["callback_id"] == "pmteam_task_from_message"
    assert "numeric field overflow" in json.dumps(modal["blocks"])

    submitted = await submit_task(fake_slack, ALICE, WHAT, "thread")
    assert submitted.status_codes == [200]
    await settle(pmteam, fake_slack)
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)

    [task] = await rows(pmteam, Task)
    [turn] = await rows(pmteam, Turn)
    assert task.thread_ts == report.ts and task.requester_id == ALICE
    assert turn.source == "shortcut" and turn.text.startswith(WHAT)
    assert f"> {ERROR_REPORT}" in turn.text
    # pmteam said in the thread that it took it on, and answered there.
    thread = bot_messages(fake_slack, ENGINEERING, report.ts)
    assert "asked me to take this on" in thread[0].text
    assert len(thread) >= 2
    # The engineer read the thread: Alice's reply is in its request.
    engineer = [
        r.body
        for r in fake_model.requests
        if r.path == "/v1/messages" and r.body.get("model") == pmteam.settings.engineer_model
    ]
    assert REPLY in json.dumps(engineer[0]["messages"], ensure_ascii=False)


async def test_a_task_can_get_its_own_new_thread_and_needs_a_request(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    report = await fake_slack.post_as_user(BOB, ENGINEERING, ERROR_REPORT)
    await fake_slack.drain()
    await use_shortcut(fake_slack, ALICE, ENGINEERING, report.ts)

    empty = await submit_task(fake_slack, ALICE, "   ", "thread")
    assert isinstance(empty.ack_body, dict)
    assert empty.ack_body.get("response_action") == "errors"
    assert await rows(pmteam, Task) == []

    await submit_task(fake_slack, ALICE, WHAT, "channel")
    await settle(pmteam, fake_slack)
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    [task] = await rows(pmteam, Task)
    # A new thread, opened by pmteam's line in the channel, not Bob's message's thread.
    assert task.thread_ts != report.ts
    [anchor] = [m for m in bot_messages(fake_slack, ENGINEERING) if m.ts == task.thread_ts]
    assert anchor.thread_ts in (None, anchor.ts) and "asked me to take this on" in anchor.text


async def test_a_channel_pmteam_is_not_in_is_explained_in_a_dm(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    report = await fake_slack.post_as_user(BOB, ENGINEERING, ERROR_REPORT)
    await fake_slack.drain()
    fake_slack.inject(
        "chat.postMessage",
        error="not_in_channel",
        when=lambda args: args.get("channel") == ENGINEERING,
    )
    await use_shortcut(fake_slack, ALICE, ENGINEERING, report.ts)
    await submit_task(fake_slack, ALICE, WHAT, "thread")
    await settle(pmteam, fake_slack)

    assert await rows(pmteam, Task) == []
    dm = fake_slack.workspace.dm_with(ALICE)
    [told] = bot_messages(fake_slack, dm.id)
    assert "not_in_channel" in told.text and "/invite @pmteam" in told.text
