"""Slack's retries and the double delivery of a mention produce nothing new."""

from __future__ import annotations

import pytest

from bot.app import Pmteam
from sandbox.slack import FakeSlack
from storage.models import Report, SlackPost, Task, Turn
from tests.e2e.conftest import (
    COORDINATION,
    ENGINEERING,
    ON_EACH_DATABASE,
    app_mention_delivery,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)

pytestmark = ON_EACH_DATABASE


async def assert_one_of_everything(pmteam: Pmteam, fake_slack: FakeSlack, thread_ts: str) -> None:
    assert len(await rows(pmteam, Task)) == 1
    assert len(await rows(pmteam, Turn)) == 1
    assert len(await rows(pmteam, Report)) == 1
    assert len(await rows(pmteam, SlackPost)) == 4  # stream, answer, summary, card
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    assert len(bot_messages(fake_slack, ENGINEERING, thread_ts)) == 2  # answer, summary
    assert len(bot_messages(fake_slack, COORDINATION)) == 1
    # Only the first delivery was marked as seen.
    eyes = [c for c in fake_slack.calls_to("reactions.add") if c.params["name"] == "eyes"]
    assert len(eyes) == 1


@pytest.mark.reliability("Slack retries an event delivery", kind="fault")
async def test_retried_mention_creates_one_task(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    posted = await mention(fake_slack, "add rate limiting to the orders API")
    first = app_mention_delivery(posted)
    assert first.type == "app_mention" and first.event_id

    # Slack did not see our ack in time and resends the same envelope, marked as a retry,
    # while the turn is still being worked on.
    retry = await fake_slack.deliver_event(
        first.payload["event"], event_id=first.event_id, retry_num=1, retry_reason="http_timeout"
    )
    assert retry.payload == first.payload
    assert retry.attempts[0].retry_num == 1
    assert retry.status_codes == [200]

    await wait_until_idle(pmteam, fake_slack, turns=1)

    # And once more after the turn finished, this time without the retry headers: a second
    # identical HTTP delivery is acknowledged with 200, and ignored.
    again = await fake_slack.deliver_event(first.payload["event"], event_id=first.event_id)
    assert again.status_codes == [200]
    await wait_until_idle(pmteam, fake_slack, turns=1)

    await assert_one_of_everything(pmteam, fake_slack, posted.ts)


@pytest.mark.reliability("One mention delivered as both app_mention and message", kind="fault")
async def test_mention_delivered_as_app_mention_and_message_creates_one_task(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    # With message.channels on, one mention reaches the app twice: app_mention + message.
    fake_slack.subscriptions.add("message.channels")
    posted = await mention(fake_slack, "add rate limiting to the orders API")
    assert sorted(d.type for d in posted.deliveries) == ["app_mention", "message"]
    assert len({d.event_id for d in posted.deliveries}) == 2
    assert all(d.status_codes == [200] for d in posted.deliveries)

    turns = await wait_until_idle(pmteam, fake_slack, turns=1)

    # pmteam's own posts in the channel and thread came back as message events too; all
    # acknowledged, none acted on.
    own = [
        d for d in fake_slack.deliveries if d.type == "message" and d.payload["event"].get("bot_id")
    ]
    assert len(own) >= 3  # answer, summary, card
    assert all(d.status_codes == [200] for d in own)
    assert turns[0].message_ts == posted.ts
    await assert_one_of_everything(pmteam, fake_slack, posted.ts)
