"""PMTEAM_ALLOWED_USERS and PMTEAM_ALLOWED_CHANNELS: a polite refusal in the thread, no task."""

from __future__ import annotations

from sandbox.slack import FakeSlack
from storage.models import Task, Turn
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    app_mention_delivery,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)


async def test_user_not_on_the_allowlist_gets_a_polite_refusal_and_no_task(
    start_pmteam: StartPmteam, fake_slack: FakeSlack
) -> None:
    pmteam = await start_pmteam(PMTEAM_ALLOWED_USERS="U0BOB")

    refused = await mention(fake_slack, "design the refunds API", user=ALICE)
    # app_mention, and the channel's message event (top-level, so not pmteam's business).
    assert [d.status_codes for d in refused.deliveries] == [[200], [200]]
    await fake_slack.wait_for(lambda: bool(bot_messages(fake_slack, ENGINEERING, refused.ts)))
    await pmteam.deps.drain()

    [refusal] = bot_messages(fake_slack, ENGINEERING, refused.ts)
    assert refusal.thread_ts == refused.ts
    assert refusal.text.startswith("Sorry, I only take tasks from the people")
    assert "PMTEAM_ALLOWED_USERS" in refusal.text
    assert await rows(pmteam, Task) == []
    assert fake_slack.workspace.reactions(ENGINEERING, refused.ts) == {}

    # Slack's retry of the refused mention is not refused a second time.
    delivery = app_mention_delivery(refused)
    retry = await fake_slack.deliver_event(
        delivery.payload["event"], event_id=delivery.event_id, retry_num=1
    )
    assert retry.status_codes == [200]
    await pmteam.deps.drain()
    assert len(bot_messages(fake_slack, ENGINEERING, refused.ts)) == 1

    # Bob is on the list: his mention is taken as usual.
    taken = await mention(fake_slack, "design the refunds API", user=BOB)
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert (turn.user_id, turn.message_ts) == (BOB, taken.ts)
    assert len(bot_messages(fake_slack, COORDINATION)) == 1


async def test_channel_not_on_the_allowlist_gets_a_polite_refusal_and_no_task(
    start_pmteam: StartPmteam, fake_slack: FakeSlack
) -> None:
    pmteam = await start_pmteam(PMTEAM_ALLOWED_CHANNELS=COORDINATION)

    refused = await mention(fake_slack, "design the refunds API", channel=ENGINEERING)
    await fake_slack.wait_for(lambda: bool(bot_messages(fake_slack, ENGINEERING, refused.ts)))
    await pmteam.deps.drain()

    [refusal] = bot_messages(fake_slack, ENGINEERING, refused.ts)
    assert refusal.text.startswith("Sorry, I don't take tasks in this channel")
    assert await rows(pmteam, Task) == []
    assert await rows(pmteam, Turn) == []
